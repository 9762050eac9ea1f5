"""Principal reasons: why the model leaned towards bad or good risk for one application.

The reasons come from XGBoost's own per-prediction contributions (``pred_contribs``, exact
TreeSHAP for tree models): for each row, one contribution per feature plus a bias, in log-odds,
summing to the model's margin, so ``sigmoid(sum)`` is the booster's own probability. A calibrated
bundle serves ``calibration(sigmoid(sum))`` instead (see :mod:`preauth.calibration`); the reasons
still explain the margin, which the calibration map only rescales without reordering. Because categories are native
categorical features (see :mod:`preauth.features`), each original column gets exactly one
contribution and one readable reason.

At most four reasons are kept, as US adverse-action notices ask: the features pushing hardest
towards bad risk and towards good risk, those on the side of the decision first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from .applications import GERMAN, UNKNOWN, Schema
from .bundles import Bundle

Direction = Literal["towards bad risk", "towards good risk"]
MAX_REASONS = 4
TOWARDS_BAD: Final[Direction] = "towards bad risk"
TOWARDS_GOOD: Final[Direction] = "towards good risk"
BIAS = "bias"
_NEGLIGIBLE = 1e-6


@dataclass(frozen=True)
class Reason:
    """One feature's push on one decision, in log-odds of bad risk, with a sentence for people."""

    feature: str
    value: Any
    contribution: float
    direction: Direction
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "value": self.value,
            "contribution": self.contribution,
            "direction": self.direction,
            "text": self.text,
        }


def contributions(bundle: Bundle, matrix: np.ndarray) -> np.ndarray:
    """Per-row contributions, shape ``(n, len(features) + 1)``; the last column is the bias.

    Each row sums to the model's margin (log-odds of bad risk) up to float32 rounding.
    """
    import xgboost as xgb

    if len(matrix) == 0:
        return np.zeros((0, len(bundle.features) + 1), dtype=np.float32)
    data = xgb.DMatrix(
        np.ascontiguousarray(matrix, dtype=np.float32),
        feature_names=bundle.booster.feature_names or list(bundle.features),
        feature_types=bundle.booster.feature_types or bundle.meta.get("feature_types"),
        enable_categorical=True,
        nthread=1,
    )
    return np.asarray(bundle.booster.predict(data, pred_contribs=True), dtype=np.float32)


def explain(bundle: Bundle, matrix: np.ndarray, frame: pd.DataFrame) -> list[list[Reason]]:
    """The principal reasons of every row of ``matrix`` (encoded from ``frame``, same row order)."""
    contribs = contributions(bundle, matrix)
    values = frame[bundle.features].to_numpy(dtype=object) if len(frame) else np.zeros((0, 0))
    margin = contribs.astype(np.float64).sum(axis=1)
    decided_bad = bundle.calibration.apply(1.0 / (1.0 + np.exp(-margin))) >= bundle.threshold
    return [
        principal_reasons(
            bundle.features, values[i], contribs[i], decided_bad=bool(decided_bad[i]), schema=bundle.schema
        )
        for i in range(len(contribs))
    ]


def principal_reasons(
    features: Sequence[str],
    values: Sequence[Any],
    contribution: Sequence[float] | np.ndarray,
    *,
    threshold: float = 0.5,
    decided_bad: bool | None = None,
    limit: int = MAX_REASONS,
    schema: Schema = GERMAN,
) -> list[Reason]:
    """Pick up to ``limit`` reasons from one row's contributions (bias last, as XGBoost returns it).

        Half the slots go to the strongest pushes towards bad risk and half towards good risk; a side
        with fewer pushes leaves its slots to the other. The side of the decision (probability against
    ``threshold``, or ``decided_bad`` when the caller decided on a calibrated probability) comes first.
    """
    pushes = [(float(contribution[j]), j) for j in range(len(features))]
    bad = sorted((p for p in pushes if p[0] > _NEGLIGIBLE), reverse=True)
    good = sorted(p for p in pushes if p[0] < -_NEGLIGIBLE)
    half = limit // 2
    take_bad = min(len(bad), max(half, limit - len(good)))
    take_good = min(len(good), limit - take_bad)
    if decided_bad is None:
        decided_bad = sigmoid(float(sum(float(c) for c in contribution))) >= threshold
    chosen = bad[:take_bad] + good[:take_good] if decided_bad else good[:take_good] + bad[:take_bad]
    return [_reason(features[j], values[j], c, schema) for c, j in chosen]


def _reason(feature: str, value: Any, contribution: float, schema: Schema) -> Reason:
    direction: Direction = TOWARDS_BAD if contribution > 0 else TOWARDS_GOOD
    shown = plain_value(value)
    return Reason(
        feature=feature,
        value=shown,
        contribution=round(contribution, 6),
        direction=direction,
        text=f"{describe(feature, shown, schema)} {'raised' if contribution > 0 else 'lowered'} the risk",
    )


def plain_value(value: Any) -> Any:
    """A JSON-friendly value: whole numbers as int, numpy scalars unwrapped, NaN as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return int(value)
    return value


def describe(feature: str, value: Any, schema: Schema = GERMAN) -> str:
    """The value in the schema's words: an amount with its unit, a code with its label, a category.

    A missing value the schema gives a meaning of its own (``no account``) is said in those words;
    one that means nothing more than ``unknown`` is "not known".
    """
    f = schema.field(feature)
    if value is None or (value == UNKNOWN and f.missing in (None, UNKNOWN)):
        return f"{f.name} not known"
    readable = f.readable.get(str(value)) if f.readable else None
    if readable:
        return f"{f.name}: {readable} ({value})"
    if f.is_category:
        return f"{f.name}: {value}"
    amount = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
    return f"{f.name} of {amount} {f.unit}".rstrip()


def sigmoid(margin: float) -> float:
    if margin < -700:
        return 0.0
    return 1.0 / (1.0 + math.exp(-margin))


def logit(probability: float) -> float:
    return math.log(probability / (1.0 - probability))
