"""The monotone promise, drawn: each constrained field's partial dependence, and what it costs.

For every field the schema gives a direction (risk never falls as Credit amount or Duration
rises, never rises as a balance moves up its ordered levels), the report sweeps that field over a
grid for every holdout applicant, the rest of the application fixed, and draws the mean calibrated
probability (the partial dependence) with a few applicants' own curves. A number's grid runs from
half its smallest holdout value to one and a half times its largest; an ordered category's grid
is its levels in order (its missing level is outside the order, so not swept). It counts the
applicants whose curve goes the wrong way anywhere (zero when the constraints hold), and states
the cross-validated AUC with and without the constraints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..applications import GERMAN, Field, Schema
from ..calibration import Calibration
from ..features import encode, monotone_constraints
from .figures import ACCENT, legend_below, svg

GRID_POINTS = 40
CURVES_SHOWN = 25
PANELS_PER_ROW = 2
ORDER_ARROW = " \u2192 "


def grid_for(field: Field, values: pd.Series) -> np.ndarray:
    """The values a field is swept over: an ordered category's level codes in order, or a number's
    span from half its smallest holdout value to one and a half times its largest."""
    if field.is_category:
        return np.arange(len(field.categories), dtype=np.float64)
    numbers = values.to_numpy(dtype=np.float64)
    return np.linspace(max(np.nanmin(numbers) * 0.5, 1e-9), np.nanmax(numbers) * 1.5, GRID_POINTS)


def sweep(
    predict: Any,
    frame: pd.DataFrame,
    features: list[str],
    name: str,
    grid: np.ndarray,
    schema: Schema = GERMAN,
) -> np.ndarray:
    """Probabilities, shape ``(rows, len(grid))``, with ``name`` set to each grid value in turn.

    All the swept copies go to the booster in one call: per-call overhead, not the trees,
    dominates at a few hundred rows.
    """
    matrix = encode(frame, features, schema)
    j = features.index(name)
    swept = np.repeat(matrix[None, :, :], len(grid), axis=0)  # (grid, rows, features)
    swept[:, :, j] = np.asarray(grid, dtype=np.float32)[:, None]
    p = predict(swept.reshape(-1, len(features)))
    return np.asarray(p, dtype=np.float64).reshape(len(grid), len(frame)).T


def violations(curves: np.ndarray, direction: str, tolerance: float = 1e-9) -> int:
    """Rows whose curve moves against ``direction`` anywhere along the grid."""
    steps = np.diff(curves, axis=1)
    wrong = steps < -tolerance if direction == "increasing" else steps > tolerance
    return int(np.any(wrong, axis=1).sum())


def section(
    booster: Any, meta: Mapping[str, Any], holdout: pd.DataFrame, schema: Schema = GERMAN
) -> dict[str, Any] | None:
    features = list(meta["features"])
    directions = monotone_constraints(features, schema)
    stored = (meta.get("search") or {}).get("monotone") or {}
    if not directions:
        return None
    calibration = Calibration.from_json(meta.get("calibration"))

    def predict(matrix: np.ndarray) -> np.ndarray:
        return calibration.apply(np.asarray(booster.inplace_predict(matrix), dtype=np.float64))

    fields: list[dict[str, Any]] = []
    for name, direction in directions.items():
        field = schema.field(name)
        grid = grid_for(field, holdout[name])
        curves = sweep(predict, holdout, features, name, grid, schema)
        # a number rises; an ordered category moves up its levels (listed once, in the text)
        levels = [field.readable.get(c, c) for c in field.categories] if field.is_category else None
        up = "moves up its levels" if levels else "rises"
        fields.append(
            {
                "name": name,
                "direction": direction,
                "grid": grid,
                "curves": curves,
                "violations": violations(curves, direction),
                "unit": field.unit,
                "levels": levels,
                "never": "falls" if direction == "increasing" else "rises",
                "rises": f"{up} ({ORDER_ARROW.join(levels)})" if levels else up,
                "up": up,
            }
        )

    ncols = min(len(fields), PANELS_PER_ROW)
    nrows = -(-len(fields) // ncols)

    def draw(figure: Any, ax: Any) -> None:
        shown = np.random.default_rng(0).choice(len(holdout), min(CURVES_SHOWN, len(holdout)), replace=False)
        for k, f in enumerate(fields):
            a = ax[k // ncols, k % ncols]
            marker = "o" if f["levels"] else None  # levels are points in order, not a continuum
            for row in shown:
                a.plot(f["grid"], f["curves"][row], color="grey", lw=0.5, alpha=0.5, marker=marker, ms=2)
            a.plot(
                f["grid"],
                f["curves"].mean(axis=0),
                color=ACCENT,
                lw=2,
                marker=marker,
                label="mean (partial dependence)",
            )
            if f["levels"]:
                a.set_xticks(f["grid"], f["levels"])
            a.set(
                title=f"{f['name']} ({f['direction']})",
                xlabel=f"{f['name']} {f['unit']}".strip(),
                ylabel="p(bad risk), calibrated",
            )
        for k in range(len(fields), nrows * ncols):
            ax[k // ncols, k % ncols].set_visible(False)
        legend_below(figure, *ax[0, 0].get_legend_handles_labels())

    return {
        "figure": svg(
            "monotone", draw, ncols=ncols, nrows=nrows, width=4.6 * ncols, height=0.4 + 3.8 * nrows
        ),
        "fields": [
            {k: f[k] for k in ("name", "direction", "violations", "never", "rises", "up")} for f in fields
        ],
        "rows": len(holdout),
        "applied": stored.get("applied", "monotone_constraints" in (meta.get("params") or {})),
        "cv_auc_with": stored.get("cv_auc_with"),
        "cv_auc_without": stored.get("cv_auc_without"),
        "measured": stored.get("measured"),
    }
