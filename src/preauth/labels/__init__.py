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

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..applications import Applications, Schema
from ..errors import ConfigurationError
from ..files import atomic_path
from ..prompts import DEFAULT_VERSION
from ..providers import LabelProvider, Params, get_provider
from ..providers.cache import CompletionCache
from ._agreement import Agreement, LabelSet, agreement, join_outcomes, measure_labels, read_labels
from ._engine import Labeler, RunStats, run_all

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
    "LABEL_COLUMNS",
    "Agreement",
    "LabelSet",
    "Labeler",
    "RunStats",
    "agreement",
    "join_outcomes",
    "describe_applications",
    "get_provider",
    "label_applications",
    "measure_labels",
    "read_labels",
    "write_labels",
]


def _labeler(
    provider: LabelProvider | str,
    cache_path: str | Path | None,
    options: dict[str, Any],
    schema: Schema,
) -> tuple[Labeler, CompletionCache | None, LabelProvider]:
    chosen = get_provider(provider) if isinstance(provider, str) else provider
    refusal = getattr(chosen, "refusal", None)
    why = refusal(schema) if callable(refusal) else None
    if why:
        raise ConfigurationError(why)
    cache = CompletionCache(cache_path) if cache_path is not None and chosen.remote else None
    return Labeler(chosen, cache=cache, schema=schema, **options), cache, chosen


def _application_columns(applications: Applications) -> dict[str, Any]:
    """The application columns under their original names, values as the user gave them."""
    out: dict[str, Any] = {}
    for f in applications.schema.fields:
        user_name = applications.columns.get(f.name)
        if user_name is not None and user_name in applications.given.columns:
            out[f.name] = applications.given[user_name].to_numpy(dtype=object)
    if applications.has_outcome:
        column = applications.outcome_column
        assert column is not None
        out[column] = applications.outcome().to_numpy(dtype=object)
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
    labeler, cache, chosen = _labeler(provider, cache_path, options, applications.schema)
    given = None if descriptions is None else pd.Series(list(descriptions), dtype=object)
    try:
        outcomes = run_all(
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
    labeler, cache, chosen = _labeler(provider, cache_path, options, applications.schema)
    try:
        outcomes = run_all(
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
    with atomic_path(path) as temporary:
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame.astype(str).replace({"None": ""}).to_parquet(temporary, index=False)
        else:
            frame.to_csv(temporary, index=False, na_rep="")
    return path
