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
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .applications import Schema
from .applications.schema import DEFAULT_REFER_MARGIN
from .bundles import Bundle

SEEN_KEY = "seen"
"""The block of ``bundle.json`` holding what training saw, per model feature."""

REFER_MARGIN = DEFAULT_REFER_MARGIN
"""The margin when the schema sets none (its ``refer_margin``, per field or for all; see
:meth:`~preauth.applications.Schema.refer_margin_for`)."""

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


def _reason(feature: str, value: Any, seen: list[Any], text: str) -> dict[str, Any]:
    return {"feature": feature, "value": value, "direction": REFER, "seen": seen, "text": text}


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)
