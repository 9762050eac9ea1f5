"""The monotone promise, drawn: each constrained field's partial dependence, and what it costs.

For every field the schema gives a direction (risk never falls as Credit amount or Duration
rises), the report sweeps that field over a grid for every holdout applicant, the rest of the
application fixed, and draws the mean calibrated probability (the partial dependence) with a few
applicants' own curves. It counts the applicants whose curve goes the wrong way anywhere (zero
when the constraints hold), and states the cross-validated AUC with and without the constraints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..applications import GERMAN, Schema
from ..calibration import Calibration
from ..features import encode, monotone_constraints
from .figures import ACCENT, legend_below, svg

GRID_POINTS = 40
CURVES_SHOWN = 25


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
        values = holdout[name].to_numpy(dtype=np.float64)
        grid = np.linspace(max(values.min() * 0.5, 1e-9), values.max() * 1.5, GRID_POINTS)
        curves = sweep(predict, holdout, features, name, grid, schema)
        fields.append(
            {
                "name": name,
                "direction": direction,
                "grid": grid,
                "curves": curves,
                "violations": violations(curves, direction),
                "unit": schema.field(name).unit,
            }
        )

    def draw(figure: Any, ax: Any) -> None:
        shown = np.random.default_rng(0).choice(len(holdout), min(CURVES_SHOWN, len(holdout)), replace=False)
        for k, f in enumerate(fields):
            a = ax[0, k]
            for row in shown:
                a.plot(f["grid"], f["curves"][row], color="grey", lw=0.5, alpha=0.5)
            a.plot(f["grid"], f["curves"].mean(axis=0), color=ACCENT, lw=2, label="mean (partial dependence)")
            a.set(
                title=f"{f['name']} ({f['direction']})",
                xlabel=f"{f['name']} {f['unit']}".strip(),
                ylabel="p(bad risk), calibrated",
            )
        legend_below(figure, *ax[0, 0].get_legend_handles_labels())

    return {
        "figure": svg("monotone", draw, ncols=len(fields), width=4.6 * len(fields), height=4.2),
        "fields": [
            {"name": f["name"], "direction": f["direction"], "violations": f["violations"]} for f in fields
        ],
        "rows": len(holdout),
        "applied": stored.get("applied", "monotone_constraints" in (meta.get("params") or {})),
        "cv_auc_with": stored.get("cv_auc_with"),
        "cv_auc_without": stored.get("cv_auc_without"),
        "measured": stored.get("measured"),
    }
