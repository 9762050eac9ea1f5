"""Drift: how far the applications a model now sees have moved from the ones it was trained on.

Training writes a *reference* into ``bundle.json`` (plain numbers, no pickle): for each numeric
input the bin edges (deciles of the rows the shipped model was fit on) and the share of rows in
each bin, with a last bin for missing; for each category the share of each level; for the score
(the calibrated probability served) its deciles and shares. Monitoring sorts live decisions into
the same bins and compares shares with the population stability index (:func:`psi`).

The score reference is made of *out-of-sample* scores (the search's out-of-fold probabilities on
the training part and the holdout's), not the shipped model's scores on its own training rows:
a boosted model is more confident on rows it has learned, and a reference made of those would
make every live population look shifted.

A bundle written before references has none: :func:`reference_for` then builds one from the
bundle's ``holdout.parquet`` (fewer rows, so noisier), or returns None and monitoring says it
cannot compute PSI for that model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .applications import Schema

REFERENCE_KEY = "reference"
"""The block of ``bundle.json`` holding the training reference."""

WATCH = 0.1
"""PSI at or above this: the population has moved; watch it (the usual credit-scoring rule of thumb)."""
ACT = 0.25
"""PSI at or above this: a shift large enough to act on (investigate, retrain)."""

EPSILON = 1e-4
"""Share given to an empty bin (on either side) before taking the logarithm: ``ln(a/0)`` is
infinite, and one applicant landing in a bin training never filled must not make PSI infinite.
1e-4 is what Evidently and most credit-risk texts use; it caps one empty bin's term near
``a·ln(a/1e-4)``."""

QUANTILES = 10
MISSING = "(missing)"
OTHER = "(other)"
"""A live category level the reference never saw (kept apart: it is drift by itself)."""

Flag = Literal["ok", "watch", "act"]


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Population stability index ``Σ (a − e)·ln(a / e)`` over bins of shares (each summing to 1).

    Zero for identical shares, symmetric, growing with the shift; an empty bin counts as
    :data:`EPSILON`. Shares are renormalised after the floor so both still sum to 1.
    """
    e = np.maximum(np.asarray(expected, dtype=np.float64), EPSILON)
    a = np.maximum(np.asarray(actual, dtype=np.float64), EPSILON)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def flag(value: float | None) -> Flag | None:
    """``act`` at :data:`ACT` or more, ``watch`` at :data:`WATCH` or more, else ``ok``."""
    if value is None or math.isnan(value):
        return None
    return "act" if value >= ACT else "watch" if value >= WATCH else "ok"


def numeric_bins(values: Iterable[Any]) -> dict[str, Any]:
    """Decile edges of the known values and the share per bin, missing last (JSON-ready).

    Bins are right-closed: ``(-inf, e0], (e0, e1], ..., (e_last, inf)``. Edges are values that
    occur (``inverted_cdf`` quantiles, no interpolation), so an integer input with a few distinct
    values gets one bin per value and no bin splitting a value in two.
    """
    numbers = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(np.float64)
    known = numbers[~np.isnan(numbers)]
    edges = (
        np.unique(np.quantile(known, np.arange(1, QUANTILES) / QUANTILES, method="inverted_cdf"))
        if len(known)
        else np.array([])
    )
    reference = {"edges": [float(e) for e in edges], "shares": []}
    reference["shares"] = [float(s) for s in numeric_shares(reference, numbers)]
    return reference


def numeric_shares(reference: Mapping[str, Any], numbers: np.ndarray) -> np.ndarray:
    """Shares of ``numbers`` (NaN: missing) in the reference's bins, the missing bin last."""
    counts = numeric_counts(reference, numbers)
    return counts / len(numbers) if len(numbers) else counts


def numeric_counts(reference: Mapping[str, Any], numbers: np.ndarray) -> np.ndarray:
    """How many of ``numbers`` (NaN: missing) fall in each of the reference's bins, missing last."""
    bins = len(reference["edges"]) + 2
    return np.bincount(numeric_bins_of(reference, numbers), minlength=bins).astype(np.float64)


def numeric_bins_of(reference: Mapping[str, Any], numbers: np.ndarray) -> np.ndarray:
    """The bin of each of ``numbers`` (NaN: missing, the last bin), as an index into the shares."""
    edges = np.asarray(reference["edges"], dtype=np.float64)
    index = np.searchsorted(edges, numbers, side="left")
    index[np.isnan(numbers)] = len(edges) + 1
    return index


def category_bins(values: Iterable[Any]) -> dict[str, Any]:
    """The share of each level (missing as :data:`MISSING`), levels sorted (JSON-ready)."""
    labels = [_level(v) for v in values]
    found = pd.Series(labels, dtype=object).value_counts(normalize=True)
    levels = sorted(str(level) for level in found.index)
    return {"levels": levels, "shares": [float(found[level]) for level in levels]}


def category_counts(reference: Mapping[str, Any], values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """How many of ``values`` fall on each of the reference's levels, then :data:`OTHER`."""
    bins = len(reference["levels"]) + 1
    return np.bincount(category_bins_of(reference, values), minlength=bins).astype(np.float64)


def category_bins_of(reference: Mapping[str, Any], values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """The bin of each of ``values``: its level's index in the reference, or :data:`OTHER`'s (last).

    Binned by distinct value first (C loops) when the values are text or None, the shape of a
    validated application: monitoring bins hundreds of thousands of them. Other values go one by
    one, since ``1``, ``1.0`` and ``True`` are one key to a dict but three levels to :func:`_level`.
    """
    levels = [str(level) for level in reference["levels"]]
    position = {level: i for i, level in enumerate(levels)}
    other = len(levels)
    try:
        distinct = set(values)
    except TypeError:  # an unhashable value (a list in the JSON): one by one
        distinct = None
    if distinct is not None and all(value is None or type(value) is str for value in distinct):
        index_of = {value: position.get(_level(value), other) for value in distinct}
        return np.fromiter(map(index_of.__getitem__, values), np.int64, len(values))
    return np.fromiter((position.get(_level(value), other) for value in values), np.int64, len(values))


def bin_labels(reference: Mapping[str, Any]) -> list[str]:
    """Readable names of a reference's bins, in the order of its shares (live shares add OTHER)."""
    if "levels" in reference:
        return [*map(str, reference["levels"]), OTHER]
    edges = [f"{e:,.6g}" for e in reference["edges"]]
    if not edges:
        return ["all", "", MISSING]
    inner = [f"({a}, {b}]" for a, b in zip(edges, edges[1:], strict=False)]
    return [f"≤ {edges[0]}", *inner, f"> {edges[-1]}", MISSING]


def reference_shares(reference: Mapping[str, Any]) -> np.ndarray:
    """The reference's shares, with a zero for :data:`OTHER` when it is a category's."""
    shares = np.asarray(reference["shares"], dtype=np.float64)
    return np.append(shares, 0.0) if "levels" in reference else shares


def live_shares(reference: Mapping[str, Any], values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Shares of live values in the reference's bins (one function for inputs and the score)."""
    counts = live_counts(reference, values)
    return counts / len(values) if len(values) else counts


def live_counts(reference: Mapping[str, Any], values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """How many live values fall in each of the reference's bins (whole numbers, as floats).

    Counts add up: monitoring counts its decisions a chunk at a time and divides once.
    """
    return np.bincount(live_bins(reference, values), minlength=bin_count(reference)).astype(np.float64)


def live_bins(reference: Mapping[str, Any], values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """The bin of each live value, as an index into :func:`reference_shares` (one function for
    inputs and the score).

    Monitoring keeps one per decision and model input, not only their counts: a window that slides
    drops its oldest decisions, and their bins with them.
    """
    if "levels" in reference:
        return category_bins_of(reference, values)
    if isinstance(values, np.ndarray) and values.dtype == np.float64:
        numbers = values  # the score: already numbers
    else:
        numbers = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(np.float64)
    return numeric_bins_of(reference, numbers)


def bin_count(reference: Mapping[str, Any]) -> int:
    """How many bins live values fall in: a number's bins and missing, or a category's levels and
    :data:`OTHER`."""
    return len(reference["levels"]) + 1 if "levels" in reference else len(reference["edges"]) + 2


def training_reference(
    frame: pd.DataFrame, features: Sequence[str], schema: Schema, scores: np.ndarray, *, source: str
) -> dict[str, Any]:
    """The reference block for ``bundle.json``: per model input its bins, and the score's."""
    inputs: dict[str, Any] = {}
    for name in features:
        column = canonical_column_values(frame[name].tolist(), name, schema)
        inputs[name] = category_bins(column) if schema.field(name).is_category else numeric_bins(column)
    return {
        "rows": len(frame),
        "source": source,
        "inputs": inputs,
        "score": numeric_bins(np.asarray(scores, dtype=np.float64)),
        "score_rows": len(scores),
    }


def canonical_column_values(values: Sequence[Any], name: str, schema: Schema) -> list[Any]:
    """A column's values as the model reads them: a category's missing is its ``missing`` level
    when the schema says missing means one (German balances: ``unknown``), as serving does."""
    field = schema.field(name)
    if not field.is_category or not field.missing_is_unknown:
        return list(values)
    missing, na = field.missing, pd.NA
    # _is_missing inlined (a float NaN is the one value unequal to itself): monitoring runs this
    # over every stored decision on every refresh
    return [missing if v is None or v is na or (isinstance(v, float) and v != v) else v for v in values]


def reference_for(bundle_dir: Path, meta: Mapping[str, Any], schema: Schema) -> dict[str, Any] | None:
    """The bundle's reference; for an older bundle one made from its holdout.parquet; else None."""
    stored = meta.get(REFERENCE_KEY)
    if isinstance(stored, Mapping) and isinstance(stored.get("inputs"), Mapping):
        return dict(stored)
    holdout = bundle_dir / "holdout.parquet"
    features = [str(f) for f in meta.get("features", [])]
    if not holdout.exists() or not features:
        return None
    frame = pd.read_parquet(holdout)
    if "probability" not in frame.columns or any(f not in frame.columns for f in features):
        return None
    return training_reference(
        frame,
        features,
        schema,
        frame["probability"].to_numpy(np.float64),
        source=f"the bundle's {len(frame)} holdout rows (it was trained before references were kept)",
    )


def _level(value: Any) -> str:
    return MISSING if _is_missing(value) else str(value)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)
