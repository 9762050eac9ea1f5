"""The hyperparameter search: best trial, parameter importances, objective by trial."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ModelBundleError
from .figures import ACCENT, POSITIVE_COLOR, key_name, legend_below, readable, svg

TRIALS_FILE = "trials.csv"


def read_trials(bundle_path: Path) -> pd.DataFrame | None:
    path = bundle_path / TRIALS_FILE
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        trials = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as error:  # pandas' ParserError is a ValueError
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelBundleError(
            f"{bundle_path}: unreadable {TRIALS_FILE} ({reason}); retrain to get a report"
        ) from None
    return trials if {"number", "value"} <= set(trials.columns) else None


def param_importances(trials: pd.DataFrame) -> dict[str, float]:
    """Optuna's fANOVA importances, on a study rebuilt from the saved trials (ranges as observed)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    done = trials[(trials.get("state", "COMPLETE") == "COMPLETE") & trials["value"].notna()]
    distributions: dict[str, Any] = {}
    for column in [c for c in done.columns if c.startswith("params_")]:
        values = done[column].dropna()
        if values.nunique() < 2 or len(values) < len(done):
            continue
        name = column.removeprefix("params_")
        if pd.api.types.is_integer_dtype(values):
            distributions[name] = IntDistribution(int(values.min()), int(values.max()))
        elif pd.api.types.is_float_dtype(values):
            distributions[name] = FloatDistribution(float(values.min()), float(values.max()))
        else:
            distributions[name] = CategoricalDistribution(sorted(values.astype(str).unique()))
    if len(done) < 2 or not distributions:
        return {}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="maximize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    for _, row in done.iterrows():
        params = {
            k: (
                str(row[f"params_{k}"])
                if isinstance(d, CategoricalDistribution)
                else int(row[f"params_{k}"])
                if isinstance(d, IntDistribution)
                else float(row[f"params_{k}"])
            )
            for k, d in distributions.items()
        }
        study.add_trial(
            optuna.trial.create_trial(params=params, distributions=distributions, value=float(row["value"]))
        )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    try:
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
    except (RuntimeError, ValueError):
        # fANOVA has nothing to apportion when every trial scored the same ("zero total variance").
        return {}


NAMES = {
    "trials_requested": "Trials asked for",
    "timeout": "Time limit (s)",
    "n_trials": "Trials run",
    "n_complete": "Completed",
    "n_pruned": "Pruned",
    "best_trial": "Best trial",
    "best_value": "Best objective",
    "best_value_note": "About the best objective",
    "best_fold_auc_std": "Best trial's AUC spread over folds (sd)",
    "shipped_reason": "Why",
    "n_rounds": "Boosting rounds",
    "scale_pos_weight_ratio": "Good risk per bad risk (for scale_pos_weight)",
    "early_stopping_rounds": "Early stopping after (rounds)",
    "duration_s": "Search time (s)",
}
"""The search summary's keys as a reader says them; others are shown in words (underscores as spaces)."""


def section(bundle_path: Path, meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """The search as training recorded it; None-valued parts when there was no search."""
    trials = read_trials(bundle_path)
    settings = meta.get("search") or {}
    info = (
        [
            (key_name(str(k), NAMES), readable(v))
            for k, v in settings.items()
            if not isinstance(v, Mapping | list)
        ]
        if isinstance(settings, Mapping)
        else []
    )
    if trials is None:
        return {"info": info, "trials": None}
    states = (
        trials["state"].astype(str) if "state" in trials.columns else pd.Series(["COMPLETE"] * len(trials))
    )
    done = trials[(states == "COMPLETE").to_numpy() & trials["value"].notna().to_numpy()]
    best = done.loc[done["value"].idxmax()] if len(done) else None
    best_params = []
    if best is not None:
        for column in [c for c in trials.columns if c.startswith("params_") and pd.notna(best[c])]:
            value = best[column]
            if isinstance(value, float | np.floating):
                value = int(value) if float(value).is_integer() else f"{float(value):.4g}"
            best_params.append((column.removeprefix("params_"), value))
    saved = settings.get("param_importances") if isinstance(settings, Mapping) else None
    importances = dict(saved) if isinstance(saved, Mapping) else param_importances(trials)

    def by_trial(figure: Any, ax: Any) -> None:
        a = ax[0, 0]
        a.scatter(done["number"], done["value"], s=14, color=ACCENT, label="completed trial")
        pruned = trials[(states == "PRUNED").to_numpy()]
        if len(pruned):
            floor = float(done["value"].min()) if len(done) else 0.5
            a.scatter(
                pruned["number"],
                np.full(len(pruned), floor),
                marker="x",
                color="grey",
                s=14,
                label="pruned (no final value)",
            )
        ordered = done.sort_values("number")
        a.step(
            ordered["number"],
            ordered["value"].cummax(),
            where="post",
            color="black",
            lw=1,
            label="best so far",
        )
        if best is not None:
            a.scatter(
                [best["number"]],
                [best["value"]],
                s=60,
                facecolors="none",
                edgecolors=POSITIVE_COLOR,
                label="best",
            )
        a.set(xlabel="Trial", ylabel="Objective (cross-validated ROC AUC)")
        legend_below(figure, *a.get_legend_handles_labels(), ncols=2)

    def importance_bars(_f: Any, ax: Any) -> None:
        names = list(importances)[::-1]
        ax[0, 0].barh(names, [importances[n] for n in names], color=ACCENT)
        ax[0, 0].set(xlabel="Importance for the objective (fANOVA, sums to 1)")

    return {
        "info": info,
        "trials": len(trials),
        "completed": len(done),
        "states": states.value_counts().to_dict(),
        "best": None if best is None else {"number": int(best["number"]), "value": float(best["value"])},
        "best_params": best_params,
        "importances": importances,
        "by_trial": svg("trials", by_trial, height=4.0) if len(done) else "",
        "importance_chart": svg("param_importance", importance_bars, height=0.4 * len(importances) + 1.0)
        if importances
        else "",
    }
