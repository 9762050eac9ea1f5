"""The labelling engine: one provider asked with caching, pacing, retries and repair, in parallel.

Internal to :mod:`preauth.labels`; :class:`Labeler` is public there for callers who want to drive
single applicants themselves.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from ..applications import GERMAN, Applications, Schema
from ..errors import ConfigurationError, ProviderError
from ..prompts import DEFAULT_VERSION, clean_description, parse_verdict, render
from ..prompts import repair_messages as _repair_messages
from ..providers import Completion, LabelProvider, Message, Params, Prompt, RetryableError, Task
from ..providers.cache import CompletionCache, cache_key

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


MIN_RPM = 0.01
"""The slowest rate a limit may set: one call every 100 minutes."""


class RateLimiter:
    """At most ``per_minute`` call starts a minute, evenly spaced, shared by all workers."""

    def __init__(self, per_minute: float | None) -> None:
        if per_minute is not None and not per_minute >= MIN_RPM:
            # 1e-300 a minute is a wait no clock can hold (an OverflowError mid-run), and NaN none at all.
            raise ConfigurationError(
                f"--rpm must be at least {MIN_RPM} (requests per minute), got {per_minute}"
            )
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
        schema: Schema = GERMAN,
    ) -> None:
        self.provider = provider
        self.schema = schema
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
        self.answered = False
        """Whether the provider has answered at all in this run: until it has, giving up stops the run."""

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
                self.answered = True
                break
            except RetryableError as error:
                if attempt >= self.max_retries:
                    if error.unreachable and not self.answered:
                        # Nothing has ever answered: a wrong URL or a dead network, not one bad call.
                        # Stop rather than spend the whole backoff on every applicant in turn.
                        raise ProviderError(
                            f"{error} (gave up after {self.max_retries} retries, and the provider has "
                            "not answered once in this run: check its address, the network and the model)"
                        ) from None
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
        messages = render(
            task, application, description=description, version=self.templates, schema=self.schema
        )
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
        description = clean_description(description or "")  # files from elsewhere carry stray quotes
        if not description:
            described = self.describe(application)
            if not described.description:
                return described
            description = described.description
        return self.classify(application, description)


def run_all(
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
    given = [None] * len(records) if descriptions is None else [text_or_none(v) for v in descriptions]
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


def text_or_none(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None
