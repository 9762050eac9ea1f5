"""Refer instead of guessing: an application unlike anything the model was trained on goes to a person.

A tree model extrapolates flat: an 18-year-old asking for 1,000,000 DM (the largest training
amount is 18,424) is scored like one asking for 18,424, and approved. So training writes into
``bundle.json`` what the shipped model saw of each feature (:func:`seen_in_training`: numbers
their ``[min, max]`` over every row the model was fit on, categories their levels), and a decision
on a value outside that (beyond a margin the schema sets, ``refer_margin``) or on a level never
seen becomes ``refer`` (manual review), with a reason naming the field, the value and the range
(:func:`refer_reasons`). The
model's own probability and verdict are still kept beside it. A bundle written before this has
no ``seen`` block and never refers.

A probability close to the threshold is a coin toss the model should not make alone: a decision
whose calibrated probability lies within ``review_band`` of the threshold (each side) is referred
too, with a reason of the same shape (:func:`band_reasons`). The band is a value the bundle
carries (``preauth train --review-band``, default :data:`DEFAULT_REVIEW_BAND`); ``PREAUTH_REVIEW_BAND``
overrides it where a bundle is loaded (:func:`with_review_band`). A bundle written before the band
has none and refers only out of range. :func:`referral_reasons` is the one call that says why a
decision is referred, for both causes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .applications import Schema
from .applications.schema import DEFAULT_REFER_MARGIN
from .bundles import REVIEW_BAND_KEY, SEEN_KEY, Bundle

REFER_MARGIN = DEFAULT_REFER_MARGIN
"""The margin when the schema sets none (its ``refer_margin``, per field or for all; see
:meth:`~preauth.applications.Schema.refer_margin_for`)."""

DEFAULT_REVIEW_BAND = 0.05
"""The band ``preauth train`` writes unless told otherwise: borderline applications go to a person."""

BAND_FEATURE = "probability"
"""The ``feature`` of a review-band reason: the model's own probability, not an input, is the cause."""

REFER = "refer"
"""A reason's ``direction`` (and a decision's ``decision``) when the application goes to a person."""


def seen_in_training(frame: pd.DataFrame, features: Sequence[str], schema: Schema) -> dict[str, Any]:
    """Per feature, what the rows in ``frame`` hold: ``{"min", "max"}`` or ``{"levels"}`` (JSON-ready)."""
    seen: dict[str, Any] = {}
    for name in features:
        field = schema.field(name)
        column = frame[name]
        if field.is_category:
            levels = {str(v) for v in column.dropna()}
            if field.missing_is_unknown and column.isna().any():
                levels.add(str(field.missing))
            seen[name] = {"levels": sorted(levels)}
        else:
            known = pd.to_numeric(column, errors="coerce").dropna()
            if len(known):
                seen[name] = {"min": float(known.min()), "max": float(known.max())}
    return seen


def merge_seen(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any]:
    """What two sets of rows hold together (:func:`seen_in_training` of both, from each's own):
    ``train --dask`` reduces it piece by piece on the workers."""
    merged: dict[str, Any] = {}
    for name in [*first, *(n for n in second if n not in first)]:
        a, b = first.get(name), second.get(name)
        if a is None or b is None:
            merged[name] = dict(a or b or {})
        elif "levels" in a:
            merged[name] = {"levels": sorted({*a["levels"], *b["levels"]})}
        else:
            merged[name] = {"min": min(a["min"], b["min"]), "max": max(a["max"], b["max"])}
    return merged


def refer_reasons(
    bundle: Bundle, values: Mapping[str, Any], *, margin: float | None = None
) -> list[dict[str, Any]]:
    """Why one application (canonical values by feature) must go to a person; empty: it need not.

    ``margin``: how far past a number's training range, as a share of its span, each side; by
    default the one the bundle's schema sets for that field (``refer_margin``).
    """
    seen = bundle.meta.get(SEEN_KEY)
    if not isinstance(seen, Mapping):
        return []
    reasons: list[dict[str, Any]] = []
    for name in bundle.features:
        known = seen.get(name)
        if not isinstance(known, Mapping):
            continue
        field = bundle.schema.field(name)
        value = values.get(name)
        if _missing(value):
            if not field.missing_is_unknown:
                continue  # a number allowed to be missing is scored as missing, as in training
            value = field.missing
        if "levels" in known:
            levels = [str(level) for level in known["levels"]]
            if str(value) not in levels:
                reasons.append(
                    _reason(
                        name,
                        value,
                        levels,
                        f"{name} '{value}' never occurs in the training data "
                        f"(seen: {', '.join(levels)}): referred for manual review",
                    )
                )
            continue
        low, high = float(known["min"]), float(known["max"])
        share = bundle.schema.refer_margin_for(name) if margin is None else margin
        slack = share * (high - low)
        number = float(value)  # type: ignore[arg-type]
        if number < low - slack or number > high + slack:
            reasons.append(
                _reason(
                    name,
                    value,
                    [low, high],
                    f"{name} {number:,.10g} is outside the range the model was trained on "
                    f"({low:,.10g} to {high:,.10g}): referred for manual review",
                )
            )
    return reasons


TRAINED_REVIEW_BAND_KEY = "review_band_trained"
"""Where an overridden bundle's metadata (in memory, never on disk) keeps the band it was trained with."""

BAND_OVERRIDE = "PREAUTH_REVIEW_BAND"
"""The setting that overrides a bundle's band, as the model card names the band's source."""


def review_band(bundle: Bundle) -> float:
    """The bundle's review band; 0 (no band) for a bundle written before bands existed."""
    return _band(bundle.meta.get(REVIEW_BAND_KEY)) or 0.0


def _band(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def with_review_band(bundle: Bundle, band: float | None) -> Bundle:
    """The bundle, carrying ``band`` instead of its own (``PREAUTH_REVIEW_BAND``); None: as it is."""
    if band is None:
        return bundle
    return dataclasses.replace(bundle, meta=band_overridden(bundle.meta, band))


def band_overridden(meta: Mapping[str, Any], band: float | None) -> dict[str, Any]:
    """Bundle metadata with ``band`` in place of the trained one, which is kept beside it for the
    model card; None: the metadata as it is."""
    if band is None:
        return dict(meta)
    trained = meta.get(TRAINED_REVIEW_BAND_KEY, meta.get(REVIEW_BAND_KEY))
    return {**meta, REVIEW_BAND_KEY: float(band), TRAINED_REVIEW_BAND_KEY: trained}


def band_in_use(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The band a (possibly overridden) bundle refers with, the one it was trained with (None for a
    bundle older than bands), and which of the two decides: ``bundle`` or ``PREAUTH_REVIEW_BAND``.
    What ``/v1/model``, the page's Model tab and ``preauth models`` show."""
    overridden = TRAINED_REVIEW_BAND_KEY in meta
    trained = _band(meta.get(TRAINED_REVIEW_BAND_KEY if overridden else REVIEW_BAND_KEY))
    return {
        "band": _band(meta.get(REVIEW_BAND_KEY)) or 0.0,
        "trained": trained,
        "source": BAND_OVERRIDE if overridden else "bundle",
    }


def band_reasons(bundle: Bundle, probability: float) -> list[dict[str, Any]]:
    """Why a probability this close to the threshold goes to a person; empty: it is clear enough."""
    band = review_band(bundle)
    threshold = bundle.threshold
    if band <= 0 or abs(probability - threshold) > band:
        return []
    low, high = max(0.0, threshold - band), min(1.0, threshold + band)
    return [
        _reason(
            BAND_FEATURE,
            probability,
            [low, high],
            f"probability of bad risk {probability:.3f} is within {band:g} of the threshold "
            f"{threshold:.3f} ({low:.3f} to {high:.3f}): referred for manual review",
        )
    ]


def referral_reasons(bundle: Bundle, values: Mapping[str, Any], probability: float) -> list[dict[str, Any]]:
    """Every reason an application goes to a person: outside training, then too close to call."""
    return [*refer_reasons(bundle, values), *band_reasons(bundle, probability)]


def _reason(feature: str, value: Any, seen: list[Any], text: str) -> dict[str, Any]:
    return {"feature": feature, "value": value, "direction": REFER, "seen": seen, "text": text}


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)
