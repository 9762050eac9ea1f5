"""Global feature effects from the model's own per-prediction contributions (TreeSHAP)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..applications import GERMAN, Schema
from ..bundles import load_booster
from ..features import encode
from .figures import ACCENT, NEGATIVE_COLOR, POSITIVE_COLOR, svg

TOP_EFFECTS = 4
MAX_POINTS = 1500
"""Dots per dependence plot: a seeded sample of a large holdout keeps the SVG small and readable."""
MAX_LEVELS = 30
"""Ticks of a category's dependence plot: past this many levels, its most common ones in the plotted
rows (a lender's category of 10,000 levels once drew 10,000 labels: a minute of ``train`` spent on
an unreadable figure)."""


def plotted_levels(levels: list[str], values: pd.Series) -> list[str]:
    """The levels a dependence plot names, in the schema's order: all of them, or the
    :data:`MAX_LEVELS` most common among ``values``."""
    if len(levels) <= MAX_LEVELS:
        return levels
    common = set(values.value_counts().index[:MAX_LEVELS])
    return [level for level in levels if level in common]


def contributions(
    booster: Any, meta: Mapping[str, Any], frame: pd.DataFrame, schema: Schema = GERMAN
) -> np.ndarray:
    """Per-row, per-feature contributions to the log-odds of bad risk; the last column is the bias."""
    import xgboost as xgb

    features = list(meta["features"])
    matrix = encode(frame, features, schema)
    dmatrix = xgb.DMatrix(
        matrix, feature_names=features, feature_types=list(meta["feature_types"]), enable_categorical=True
    )
    return np.asarray(booster.predict(dmatrix, pred_contribs=True), dtype=np.float64)


def section(
    bundle_path: Path, meta: Mapping[str, Any], holdout: pd.DataFrame, schema: Schema = GERMAN
) -> dict[str, Any]:
    """Mean |contribution| per feature and dependence plots of the top features, on the holdout."""
    booster = load_booster(bundle_path)
    features = list(meta["features"])
    contrib = contributions(booster, meta, holdout, schema)[:, : len(features)]
    importance = np.abs(contrib).mean(axis=0)
    order = list(np.argsort(importance)[::-1])
    top = order[: min(TOP_EFFECTS, len(features))]

    def bars(_f: Any, ax: Any) -> None:
        names = [features[i] for i in order][::-1]
        ax[0, 0].barh(names, importance[order][::-1], color=ACCENT)
        ax[0, 0].set(xlabel="Mean |contribution| to the log-odds of bad risk")

    rng = np.random.default_rng(0)
    shown = (
        np.sort(rng.choice(len(holdout), MAX_POINTS, replace=False)) if len(holdout) > MAX_POINTS else None
    )

    def dependence(_f: Any, ax: Any) -> None:
        sample = holdout if shown is None else holdout.iloc[shown]
        for k, i in enumerate(top):
            a = ax[k // 2, k % 2]
            name = features[i]
            f = schema.field(name)
            y = contrib[:, i] if shown is None else contrib[shown, i]
            colors = np.where(y > 0, POSITIVE_COLOR, NEGATIVE_COLOR)
            title = name
            if f.is_category:
                every = list(f.levels())
                levels = plotted_levels(every, sample[name])
                codes = pd.Index(levels).get_indexer(sample[name])
                kept = codes >= 0  # a row of a level not named is not drawn
                jitter = rng.uniform(-0.2, 0.2, len(codes))
                a.scatter((codes + jitter)[kept], y[kept], s=9, c=colors[kept], alpha=0.6)
                a.set_xticks(range(len(levels)), levels, rotation=30, ha="right", fontsize=7)
                if len(levels) < len(every):
                    title = f"{name} ({len(levels)} most common of {len(every):,} levels)"
            else:
                a.scatter(sample[name].to_numpy(dtype=np.float64), y, s=9, c=colors, alpha=0.6)
            a.axhline(0, color="grey", lw=0.8)
            a.set(title=title, ylabel="contribution (log-odds)")
        for k in range(len(top), 4):
            ax[k // 2, k % 2].set_visible(False)

    rows = [
        {
            "feature": features[i],
            "mean_abs": float(importance[i]),
            "towards_bad": float(np.mean(contrib[:, i] > 0)),
            "max_push": float(contrib[:, i].max()),
        }
        for i in order
    ]
    excluded = list(meta.get("excluded") or [])
    return {
        "bars": svg("importance", bars, height=0.35 * len(features) + 1.0),
        "dependence": svg("dependence", dependence, ncols=2, nrows=2, width=9.0, height=6.4),
        "rows": rows,
        "top": [features[i] for i in top],
        "sampled": None if shown is None else len(shown),
        "excluded": excluded,
    }


# --------------------------------------------------------------------------------------------
# Fairness
