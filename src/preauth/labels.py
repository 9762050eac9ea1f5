"""Labels: describing applicants, classifying them as good or bad risk, and measuring labels.

The engine asks a :mod:`provider <preauth.providers>` two things per applicant, as the original
pipeline asked Llama 3 on Bedrock: a plain description, then a ``good risk``/``bad risk`` verdict
on that description. Around each call it adds what a production labelling job needs: a SQLite
cache (re-runs are free, a killed run resumes), bounded concurrency, a client-side rate limit,
retries with exponential backoff and jitter, forgiving answer parsing with one repair retry, and a
run summary with token usage. One applicant's failure never ends the batch: it is written
unlabeled, with the raw answer, for a human to read. Only failures no retry can fix (credentials,
unknown model) stop the run, and everything answered until then stays in the cache.

Labels made elsewhere are first-class: :func:`read_labels` reads any file with a ``target``
column, and :func:`measure_labels` measures it against real outcomes.
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .applications import (
    FIELDS,
    OUTCOME,
    Applications,
    OnUnknown,
    Reject,
    normalize_name,
    read_table,
    validate,
)
from .errors import InputError
from .prompts import BAD, DEFAULT_VERSION, GOOD, clean_description, normalize_label, parse_verdict, render
from .prompts import repair_messages as _repair_messages
from .providers import Completion, LabelProvider, Message, Params, Prompt, RetryableError, Task, get_provider
from .providers.cache import CompletionCache, cache_key

LABEL_COLUMNS = (
    "id",
    "description",
    "target",
    "rationale",
    "provider",
    "model",
    "prompt_version",
    "raw_answer",
)
"""The labels file's own columns, after the application columns (and ``Risk`` when present)."""
DESCRIPTION_COLUMNS = ("id", "description", "provider", "model", "prompt_version")

__all__ = [
    "Agreement",
    "LabelSet",
    "Labeler",
    "RunStats",
    "agreement",
    "describe_applications",
    "get_provider",
    "label_applications",
    "measure_labels",
    "read_labels",
    "write_labels",
]


# ------------------------------------------------------------------------------------------
# Run accounting and pacing


@dataclass
class RunStats:
    """What one run did; ``calls`` are requests actually sent, ``cached`` answers reused."""

    provider: str = ""
    model: str = ""
    prompt_version: str = ""
    applicants: int = 0
    labeled: int = 0
    unlabeled: int = 0
    calls: int = 0
    cached: int = 0
    retries: int = 0
    repairs: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        out["calls_per_second"] = round(self.calls_per_second, 3)
        return out


class RateLimiter:
    """At most ``per_minute`` call starts a minute, evenly spaced, shared by all workers."""

    def __init__(self, per_minute: float | None) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, stop: threading.Event) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            stop.wait(start - now)


class _Stopped(Exception):
    """Another worker hit a fatal error; this one gives up quietly."""


@dataclass
class Outcome:
    """One applicant's result."""

    description: str = ""
    target: str | None = None
    rationale: str = ""
    raw_answer: str = ""


# ------------------------------------------------------------------------------------------
# The engine


class Labeler:
    """Asks one provider, with caching, pacing, retries and repair. Thread-safe."""

    def __init__(
        self,
        provider: LabelProvider,
        *,
        cache: CompletionCache | None = None,
        params: Params | None = None,
        prompt_version: str = DEFAULT_VERSION,
        timeout: float = 60.0,
        rpm: float | None = None,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        stats: RunStats | None = None,
    ) -> None:
        self.provider = provider
        self.cache = cache if provider.remote else None
        self.params = params or Params()
        self.templates = prompt_version
        self.prompt_version = provider.prompt_version or prompt_version
        self.timeout = timeout
        self.limiter = RateLimiter(rpm)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stats = stats or RunStats()
        self.stats.provider, self.stats.model = provider.name, provider.model
        self.stats.prompt_version = self.prompt_version
        self.stop = threading.Event()

    def ask(self, prompt: Prompt) -> Completion:
        """One answer: from the cache, or from the provider with retries (then cached)."""
        key = cache_key(
            self.provider.name, self.provider.model, self.prompt_version, prompt.messages, self.params
        )
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.stats.add(cached=1)
                return hit
        attempt = 0
        while True:
            if self.stop.is_set():
                raise _Stopped
            self.limiter.wait(self.stop)
            try:
                self.stats.add(calls=1)
                completion = self.provider.complete(prompt, self.params, self.timeout)
                break
            except RetryableError as error:
                if attempt >= self.max_retries:
                    raise
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                delay = delay / 2 + random.uniform(0, delay / 2)  # equal jitter: spread, never zero
                if error.retry_after is not None:
                    delay = max(delay, min(error.retry_after, self.max_backoff))
                attempt += 1
                self.stats.add(retries=1)
                if self.stop.wait(delay):
                    raise _Stopped from None
        self.stats.add(input_tokens=completion.input_tokens or 0, output_tokens=completion.output_tokens or 0)
        if self.cache is not None:
            self.cache.put(
                key,
                provider=self.provider.name,
                model=self.provider.model,
                prompt_version=self.prompt_version,
                task=prompt.task,
                messages=prompt.messages,
                params=self.params,
                completion=completion,
            )
        return completion

    def _prompt(self, task: Task, application: dict[str, Any], description: str | None = None) -> Prompt:
        messages = render(task, application, description=description, version=self.templates)
        return Prompt(task, messages, application, description)

    def describe(self, application: dict[str, Any]) -> Outcome:
        try:
            answer = self.ask(self._prompt("describe", application)).text
        except RetryableError as error:
            return Outcome(raw_answer=f"error: {error} (gave up after {self.max_retries} retries)")
        description = clean_description(answer)
        return Outcome(description=description, raw_answer="" if description else answer)

    def classify(self, application: dict[str, Any], description: str) -> Outcome:
        prompt = self._prompt("classify", application, description)
        try:
            answer = self.ask(prompt).text
            verdict = parse_verdict(answer)
            if verdict is None:
                self.stats.add(repairs=1)
                repair: tuple[Message, ...] = _repair_messages(
                    prompt.messages, answer, version=self.templates
                )
                answer = self.ask(Prompt("repair", repair, application, description)).text
                verdict = parse_verdict(answer)
        except RetryableError as error:
            return Outcome(
                description, raw_answer=f"error: {error} (gave up after {self.max_retries} retries)"
            )
        if verdict is None:
            return Outcome(description, raw_answer=answer)
        return Outcome(description, verdict.label, verdict.rationale, answer)

    def label(self, application: dict[str, Any], description: str | None = None) -> Outcome:
        """Describe (unless a description is given), then classify one applicant."""
        if not description:
            described = self.describe(application)
            if not described.description:
                return described
            description = described.description
        return self.classify(application, description)


def _run(
    applications: Applications,
    labeler: Labeler,
    work: Callable[[dict[str, Any], str | None], Outcome],
    *,
    descriptions: pd.Series | None,
    concurrency: int,
    progress: bool,
    what: str,
) -> list[Outcome]:
    """Apply ``work`` to every applicant, in parallel for remote providers, with a progress bar."""
    records = applications.frame.to_dict("records")
    given = [None] * len(records) if descriptions is None else [_text(v) for v in descriptions]
    outcomes: list[Outcome | None] = [None] * len(records)
    stats = labeler.stats
    stats.applicants += len(records)
    workers = max(1, concurrency) if labeler.provider.remote else 1
    started = time.monotonic()
    bar = _progress_bar(progress, what, len(records))

    def one(i: int) -> None:
        if labeler.stop.is_set():
            raise _Stopped
        try:
            outcome = work(records[i], given[i])
        except _Stopped:
            raise
        except BaseException:
            labeler.stop.set()  # a failure no retry fixes: the other workers stop before their next call
            raise
        outcomes[i] = outcome
        if bar is not None:
            elapsed = time.monotonic() - started
            rate = stats.calls / elapsed if elapsed > 0 else 0.0
            bar.update(
                bar.task_ids[0], advance=1, rate=f"{rate:5.1f} calls/s", cached=f"{stats.cached} cached"
            )

    try:
        if bar is not None:
            bar.start()
        if workers == 1:
            for i in range(len(records)):
                one(i)
        else:
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="label")
            try:
                futures = [pool.submit(one, i) for i in range(len(records))]
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                failed = [f.exception() for f in done if f.exception() is not None]
                real = [e for e in failed if not isinstance(e, _Stopped)]
                if real:
                    raise real[0]  # type: ignore[misc]
            except BaseException:
                labeler.stop.set()  # also on Ctrl-C: workers stop before their next call
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        if bar is not None:
            bar.stop()
        stats.seconds += time.monotonic() - started
    final = [o if o is not None else Outcome() for o in outcomes]
    return final


def _progress_bar(show: bool, what: str, total: int) -> Any:
    if not show:
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[cached]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    bar.add_task(what, total=total, rate="  0.0 calls/s", cached="0 cached")
    return bar


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _labeler(
    provider: LabelProvider | str,
    cache_path: str | Path | None,
    options: dict[str, Any],
) -> tuple[Labeler, CompletionCache | None, LabelProvider]:
    chosen = get_provider(provider) if isinstance(provider, str) else provider
    cache = CompletionCache(cache_path) if cache_path is not None and chosen.remote else None
    return Labeler(chosen, cache=cache, **options), cache, chosen


def _application_columns(applications: Applications) -> dict[str, Any]:
    """The application columns under their original names, values as the user gave them."""
    out: dict[str, Any] = {}
    for f in FIELDS:
        user_name = applications.columns.get(f.name)
        if user_name is not None and user_name in applications.given.columns:
            out[f.name] = applications.given[user_name].to_numpy(dtype=object)
    if applications.has_outcome:
        out[OUTCOME.name] = applications.frame[OUTCOME.name].to_numpy(dtype=object)
    return out


def label_applications(
    applications: Applications,
    provider: LabelProvider | str = "rules",
    *,
    descriptions: pd.Series | Sequence[str | None] | None = None,
    concurrency: int = 4,
    cache_path: str | Path | None = None,
    rpm: float | None = None,
    timeout: float = 60.0,
    params: Params | None = None,
    prompt_version: str = DEFAULT_VERSION,
    max_retries: int = 5,
    backoff: float = 1.0,
    progress: bool = True,
) -> pd.DataFrame:
    """Describe and classify every applicant: the labels table, one row per application.

    Columns: the application columns (original names), ``Risk`` when present, then
    :data:`LABEL_COLUMNS`. ``target`` is empty for unlabeled applicants, whose ``raw_answer``
    says why. ``descriptions`` (aligned with the applications' rows) are classified as given
    instead of being written anew. The run summary is in ``frame.attrs["label_run"]``.
    Raises :class:`ProviderError` on failures no retry can fix.
    """
    options = {
        "params": params,
        "prompt_version": prompt_version,
        "timeout": timeout,
        "rpm": rpm,
        "max_retries": max_retries,
        "backoff": backoff,
    }
    labeler, cache, chosen = _labeler(provider, cache_path, options)
    given = None if descriptions is None else pd.Series(list(descriptions), dtype=object)
    try:
        outcomes = _run(
            applications,
            labeler,
            labeler.label,
            descriptions=given,
            concurrency=concurrency,
            progress=progress,
            what=f"labelling with {chosen.name}",
        )
    finally:
        if cache is not None:
            cache.close()
        chosen.close()
    stats = labeler.stats
    stats.labeled = sum(o.target is not None for o in outcomes)
    stats.unlabeled = len(outcomes) - stats.labeled
    frame = pd.DataFrame(_application_columns(applications))
    frame["id"] = applications.ids.to_numpy(dtype=object)
    frame["description"] = [o.description for o in outcomes]
    frame["target"] = [o.target or "" for o in outcomes]
    frame["rationale"] = [o.rationale for o in outcomes]
    frame["provider"] = chosen.name
    frame["model"] = chosen.model
    frame["prompt_version"] = labeler.prompt_version
    frame["raw_answer"] = [o.raw_answer for o in outcomes]
    frame.attrs["label_run"] = stats.as_dict()
    return frame


def describe_applications(
    applications: Applications,
    provider: LabelProvider | str = "rules",
    *,
    concurrency: int = 4,
    cache_path: str | Path | None = None,
    rpm: float | None = None,
    timeout: float = 60.0,
    params: Params | None = None,
    prompt_version: str = DEFAULT_VERSION,
    max_retries: int = 5,
    backoff: float = 1.0,
    progress: bool = True,
) -> pd.DataFrame:
    """One plain-language description per applicant: application columns, then id, description,
    provider, model, prompt_version. A description that could not be had is left empty."""
    options = {
        "params": params,
        "prompt_version": prompt_version,
        "timeout": timeout,
        "rpm": rpm,
        "max_retries": max_retries,
        "backoff": backoff,
    }
    labeler, cache, chosen = _labeler(provider, cache_path, options)
    try:
        outcomes = _run(
            applications,
            labeler,
            lambda app, _given: labeler.describe(app),
            descriptions=None,
            concurrency=concurrency,
            progress=progress,
            what=f"describing with {chosen.name}",
        )
    finally:
        if cache is not None:
            cache.close()
        chosen.close()
    frame = pd.DataFrame(_application_columns(applications))
    frame["id"] = applications.ids.to_numpy(dtype=object)
    frame["description"] = [o.description for o in outcomes]
    frame["provider"] = chosen.name
    frame["model"] = chosen.model
    frame["prompt_version"] = labeler.prompt_version
    frame.attrs["label_run"] = labeler.stats.as_dict()
    return frame


def write_labels(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a labels (or descriptions) table atomically: a temporary file, then a rename.

    ``.parquet`` writes Parquet; anything else CSV with empty cells for missing values.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame.astype(str).replace({"None": ""}).to_parquet(temporary, index=False)
        else:
            frame.to_csv(temporary, index=False, na_rep="")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


# ------------------------------------------------------------------------------------------
# Labels made anywhere, and how good they are


@dataclass
class LabelSet:
    """Applications with a label each: ``target`` is ``good risk``/``bad risk`` or None (unlabeled),
    indexed like ``applications.frame`` (1-based source rows)."""

    applications: Applications
    target: pd.Series
    description: pd.Series | None
    provenance: str
    has_id_column: bool

    @property
    def labeled(self) -> pd.Series:
        return self.target.notna()

    @property
    def bad(self) -> pd.Series:
        """1.0 for bad risk, 0.0 for good risk, NaN when unlabeled: the training target."""
        return self.target.map({BAD: 1.0, GOOD: 0.0}).astype("float64")


_ID_NAMES = frozenset({"id", "index", "unnamed_0", "application_id", "applicant_id"})


def _has_id_column(table: pd.DataFrame) -> bool:
    names = [str(c) for c in table.columns]
    return bool(names) and (names[0].strip() == "" or any(normalize_name(n) in _ID_NAMES for n in names))


def _column(table: pd.DataFrame, name: str) -> str | None:
    for raw in table.columns:
        if normalize_name(str(raw)) == name:
            return str(raw)
    return None


def _provenance(table: pd.DataFrame, source: str) -> str:
    provider, model = _column(table, "provider"), _column(table, "model")
    if provider and model:
        pairs = (table[provider].astype(str) + "/" + table[model].astype(str)).unique()
        return "llm labels from " + ", ".join(sorted(p for p in pairs if p != "/"))
    return f"labels from {Path(source).name}"


def read_labels(path: str | Path, *, on_unknown: OnUnknown = "error") -> LabelSet:
    """Read any applications file with a ``target`` column (``good risk``/``bad risk``/empty).

    Rows with another target value are rejected with their reason, like any bad row.
    """
    source = str(path)
    table = read_table(path)
    target_name = _column(table, "target")
    if target_name is None:
        raise InputError("no 'target' column (good risk / bad risk): not a labels file", source=source)
    applications = validate(table, source=source, on_unknown=on_unknown)
    positions = applications.frame.index.to_numpy() - 1
    raw = table[target_name].to_numpy(dtype=object)[positions]
    labels = [normalize_label(v) for v in raw]
    empty = np.array([str(v).strip() == "" for v in raw])
    invalid = np.array([lab is None for lab in labels]) & ~empty
    if invalid.any():
        rows = applications.frame.index[invalid]
        for row, value in zip(rows, raw[invalid], strict=True):
            applications.rejects.append(
                Reject(
                    int(row),
                    target_name,
                    str(value),
                    f"'{value}' is not one of: good risk, bad risk, or empty",
                )
            )
        applications.rejects.sort(key=lambda r: r.row)
        keep = ~invalid
        applications = Applications(
            applications.frame[keep],
            applications.given[keep],
            applications.ids[keep],
            applications.rejects,
            applications.source,
            applications.columns,
        )
        labels = [lab for lab, k in zip(labels, keep, strict=True) if k]
        positions = positions[keep]
    target = pd.Series(labels, index=applications.frame.index, dtype=object, name="target")
    description_name = _column(table, "description")
    description = None
    if description_name is not None:
        description = pd.Series(
            table[description_name].to_numpy(dtype=object)[positions], index=applications.frame.index
        )
    return LabelSet(applications, target, description, _provenance(table, source), _has_id_column(table))


@dataclass(frozen=True)
class Agreement:
    """How often labels match the truth. Bad risk is the positive class of the confusion matrix."""

    measured_against: str
    n: int
    unlabeled: int
    accuracy: float
    kappa: float
    confusion: dict[str, int]
    majority_label: str
    majority_accuracy: float
    label_bad_rate: float
    truth_bad_rate: float
    labels: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_labels(values: Iterable[Any]) -> list[str | None]:
    return [normalize_label(v) for v in values]


def agreement(
    labels: Iterable[Any], truth: Iterable[Any], *, measured_against: str = "Risk", provenance: str = ""
) -> Agreement:
    """Accuracy, Cohen's kappa and the confusion matrix of labels against real outcomes.

    Both sides are read as good/bad (``good risk``, ``good``, ``bad risk``, ``bad``); pairs where
    the label is missing count as unlabeled, pairs with no truth are left out.
    """
    left, right = _as_labels(labels), _as_labels(truth)
    if len(left) != len(right):
        raise InputError(f"{len(left)} labels but {len(right)} outcomes; they must pair up one to one")
    pairs = [(a, b) for a, b in zip(left, right, strict=True) if b is not None]
    unlabeled = sum(a is None for a, _ in pairs)
    pairs = [(a, b) for a, b in pairs if a is not None]
    n = len(pairs)
    if n == 0:
        raise InputError("no labelled applicant has a known outcome; nothing to measure")
    tp = sum(a == BAD and b == BAD for a, b in pairs)
    tn = sum(a == GOOD and b == GOOD for a, b in pairs)
    fp = sum(a == BAD and b == GOOD for a, b in pairs)
    fn = sum(a == GOOD and b == BAD for a, b in pairs)
    accuracy = (tp + tn) / n
    label_bad, truth_bad = (tp + fp) / n, (tp + fn) / n
    expected = label_bad * truth_bad + (1 - label_bad) * (1 - truth_bad)
    kappa = 0.0 if expected == 1 else (accuracy - expected) / (1 - expected)
    majority = BAD if truth_bad > 0.5 else GOOD
    return Agreement(
        measured_against=measured_against,
        n=n,
        unlabeled=unlabeled,
        accuracy=accuracy,
        kappa=kappa,
        confusion={"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        majority_label=majority,
        majority_accuracy=max(truth_bad, 1 - truth_bad),
        label_bad_rate=label_bad,
        truth_bad_rate=truth_bad,
        labels=provenance,
    )


def _truth(path: str | Path, on_unknown: OnUnknown) -> tuple[pd.Series, pd.Series, bool, int, str]:
    """Outcomes from a file with ``Risk`` (or ``target``): (values by row, ids, has id, rows, name)."""
    source = str(path)
    table = read_table(path)
    risk = _column(table, normalize_name(OUTCOME.name))
    if risk is not None:
        applications = validate(table, source=source, on_unknown=on_unknown, required=())
        values = applications.frame[OUTCOME.name].map({"good": GOOD, "bad": BAD})
        return values, applications.ids, _has_id_column(table), len(table), f"Risk in {Path(source).name}"
    if _column(table, "target") is not None:
        labels = read_labels(path, on_unknown=on_unknown)
        rows = len(table)
        return (
            labels.target,
            labels.applications.ids,
            labels.has_id_column,
            rows,
            f"target in {Path(source).name}",
        )
    raise InputError("no 'Risk' column with the real outcomes (good / bad)", source=source)


def measure_labels(
    labels_path: str | Path, truth_path: str | Path | None = None, *, on_unknown: OnUnknown = "unknown"
) -> Agreement:
    """Measure a labels file against real outcomes.

    The truth is ``Risk`` in ``truth_path`` (or in the labels file itself when no truth file is
    named). Rows are joined by id when both files have an id column, otherwise by row order, in
    which case the files must have the same number of rows.
    """
    labels = read_labels(labels_path, on_unknown=on_unknown)
    if truth_path is None:
        if not labels.applications.has_outcome:
            raise InputError(
                "no 'Risk' column to measure against; name a file with --truth", source=str(labels_path)
            )
        truth = labels.applications.frame[OUTCOME.name].map({"good": GOOD, "bad": BAD})
        return agreement(
            labels.target,
            truth,
            measured_against=f"Risk in {Path(labels_path).name}",
            provenance=labels.provenance,
        )
    values, ids, truth_has_id, truth_rows, name = _truth(truth_path, on_unknown)
    if labels.has_id_column and truth_has_id:
        ids = ids.astype(str).str.strip()
        duplicated = ids[ids.duplicated()]
        if len(duplicated):
            raise InputError(f"id '{duplicated.iloc[0]}' appears twice", source=str(truth_path), column="id")
        by_id = pd.Series(values.to_numpy(dtype=object), index=ids.to_numpy())
        label_ids = labels.applications.ids.astype(str).str.strip()
        matched = label_ids.isin(by_id.index)
        if not matched.any():
            raise InputError(f"no id in {labels_path} matches an id in {truth_path}", source=str(labels_path))
        truth = by_id.reindex(label_ids[matched].to_numpy()).to_numpy(dtype=object)
        return agreement(
            labels.target[matched.to_numpy()],
            truth,
            measured_against=f"{name}, joined by id",
            provenance=labels.provenance,
        )
    label_rows = len(labels.applications.frame) + len(labels.applications.rejects)
    if label_rows != truth_rows:
        raise InputError(
            f"{label_rows} rows here but {truth_rows} in {truth_path}; without an id column in both files "
            "rows are joined by order, so the counts must match",
            source=str(labels_path),
        )
    truth = values.reindex(labels.target.index).to_numpy(dtype=object)
    return agreement(
        labels.target, truth, measured_against=f"{name}, joined by row order", provenance=labels.provenance
    )
