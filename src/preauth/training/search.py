"""The hyperparameter search: Optuna's TPE over XGBoost, stratified k-fold ROC AUC, pruning.

``scale_pos_weight`` starts from negatives/positives with bad risk as the positive class, so the
minority class is the one up-weighted, and the search moves it around that ratio but never across 1.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigurationError, InputError
from ..evaluation import roc_auc
from ..features import feature_types
from .config import BAD, GOOD, TrainingConfig
from .shared_study import open_study, run_trials

# --------------------------------------------------------------------------------------------
# Splits, weights and the search


def class_weight_ratio(y: np.ndarray) -> float:
    """negatives / positives with bad risk = 1: above 1 exactly when bad risk is the minority."""
    positives = int(np.sum(y == 1))
    negatives = int(np.sum(y == 0))
    if positives == 0 or negatives == 0:
        raise ValueError("both classes are needed")
    return negatives / positives


def weight_search_range(ratio: float) -> tuple[float, float]:
    """Where the search may move ``scale_pos_weight``: ½× to 2× the ratio, never across 1.

    Crossing 1 would up-weight the majority class, the original pipeline's mistake.
    """
    low, high = ratio / 2, ratio * 2
    if ratio >= 1:
        low = max(low, 1.0)
    else:
        high = min(high, 1.0)
    return low, high


def split_holdout(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified positions (train, holdout), each sorted; the holdout is never given to the search."""
    from sklearn.model_selection import train_test_split

    train, holdout = train_test_split(
        np.arange(len(y)), test_size=fraction, stratify=y, random_state=seed, shuffle=True
    )
    return np.sort(train), np.sort(holdout)


def _check_class_sizes(y: np.ndarray, config: TrainingConfig, source: str) -> None:
    counts = np.bincount(y, minlength=2)
    needed = int(np.ceil((config.folds + 1) / (1 - config.holdout_fraction))) + 1
    for code, name in ((1, BAD), (0, GOOD)):
        if counts[code] < needed:
            raise InputError(
                f"too few '{name}' labels to train ({counts[code]}); a {config.holdout_fraction:.0%} "
                f"holdout and {config.folds}-fold cross-validation need at least {needed} of each class",
                source=source,
            )


def _dmatrix(x: np.ndarray, y: np.ndarray | None, features: Sequence[str], threads: int) -> Any:
    import xgboost as xgb

    return xgb.DMatrix(
        x,
        label=y,
        feature_names=list(features),
        feature_types=feature_types(features),
        enable_categorical=True,
        nthread=threads,
    )


def base_params(config: TrainingConfig) -> dict[str, Any]:
    return {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "tree_method": "hist",
        "max_cat_to_onehot": 4,
        "nthread": config.threads,
        "seed": config.seed,
        "verbosity": 0,
    }


def suggest_params(trial: Any, ratio: float) -> dict[str, Any]:
    """One point of the search space; ``scale_pos_weight`` around negatives/positives."""
    low, high = weight_search_range(ratio)
    return {
        "max_depth": trial.suggest_int("max_depth", 2, 6),
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
        "gamma": trial.suggest_float("gamma", 0.0, 2.0),
        "scale_pos_weight": trial.suggest_float("scale_pos_weight", low, high, log=True),
    }


@dataclass
class SearchOutcome:
    """What the hyperparameter search found, from the training part alone."""

    params: dict[str, Any]
    n_rounds: int
    cv_auc: float
    oof: np.ndarray  # the best trial's out-of-fold probabilities, aligned with the training part
    trials: pd.DataFrame
    summary: dict[str, Any]
    rows_seen: np.ndarray  # source row numbers the search was given


def search(
    x: np.ndarray,
    y: np.ndarray,
    rows: np.ndarray,
    features: Sequence[str],
    config: TrainingConfig,
    on_trial: Callable[[int, float | None], None] | None = None,
) -> SearchOutcome:
    """Optuna TPE search maximising mean ROC AUC over stratified folds of ``(x, y)``.

    Each fold stops early on its own validation part (as ``xgb.cv`` does), which flatters the CV
    AUC slightly; that is why the holdout, which nothing here sees, gives the reported numbers.
    Each fold's running mean is reported to the median pruner, so a clearly worse trial stops
    after two folds instead of five.
    """
    import optuna
    import xgboost as xgb
    from sklearn.model_selection import StratifiedKFold

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    ratio = class_weight_ratio(y)
    folds = list(StratifiedKFold(config.folds, shuffle=True, random_state=config.seed).split(x, y))
    matrices = [
        (_dmatrix(x[tr], y[tr], features, config.threads), _dmatrix(x[va], y[va], features, config.threads))
        for tr, va in folds
    ]
    oofs: dict[int, np.ndarray] = {}
    fixed = base_params(config)

    def objective(trial: optuna.Trial) -> float:
        params = {**fixed, **suggest_params(trial, ratio)}
        oof = np.empty(len(y), dtype=np.float64)
        aucs: list[float] = []
        rounds: list[int] = []
        for step, ((_, valid), (dtrain, dvalid)) in enumerate(zip(folds, matrices, strict=True)):
            booster = xgb.train(
                params,
                dtrain,
                num_boost_round=config.max_rounds,
                evals=[(dvalid, "valid")],
                early_stopping_rounds=config.early_stopping_rounds,
                verbose_eval=False,
            )
            best = int(booster.best_iteration) + 1
            p = booster.predict(dvalid, iteration_range=(0, best))
            oof[valid] = p
            aucs.append(roc_auc(y[valid], p) or 0.5)
            rounds.append(best)
            trial.report(float(np.mean(aucs)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        trial.set_user_attr("n_rounds", int(round(float(np.mean(rounds)))))
        trial.set_user_attr("fold_auc_std", float(np.std(aucs)))
        oofs[trial.number] = oof
        return float(np.mean(aucs))

    study = open_study(
        optuna.samplers.TPESampler(seed=config.seed),
        optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
        "preauth",
    )

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial is not None:
            complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
            on_trial(trial.number, study.best_value if complete else None)

    run_trials(study, objective, trials=config.trials, timeout=config.timeout, callbacks=[report])
    states = Counter(t.state.name for t in study.trials)
    if states.get("COMPLETE", 0) == 0:
        raise ConfigurationError("no search trial completed; raise --timeout or --trials")
    best = study.best_trial
    params = {**fixed, **suggest_params(optuna.trial.FixedTrial(best.params), ratio)}
    summary = {
        "sampler": "TPESampler",
        "pruner": "MedianPruner(n_startup_trials=5, n_warmup_steps=1)",
        "objective": f"mean ROC AUC over {config.folds} stratified folds of the training part",
        "seed": config.seed,
        "trials_requested": config.trials,
        "timeout": config.timeout,
        "n_trials": len(study.trials),
        "n_complete": states.get("COMPLETE", 0),
        "n_pruned": states.get("PRUNED", 0),
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": dict(best.params),
        "n_rounds": best.user_attrs["n_rounds"],
        "scale_pos_weight_ratio": ratio,
        "scale_pos_weight_range": list(weight_search_range(ratio)),
        "early_stopping_rounds": config.early_stopping_rounds,
        "param_importances": _importances(study, config.seed),
        "duration_s": round(time.perf_counter() - started, 3),
    }
    trials = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs"))
    return SearchOutcome(
        params=params,
        n_rounds=int(best.user_attrs["n_rounds"]),
        cv_auc=float(best.value),  # type: ignore[arg-type]
        # In a shared study the best trial may have run in another process: its folds again, here.
        oof=oofs[best.number] if best.number in oofs else _again(objective, best, oofs),
        trials=trials,
        summary=summary,
        rows_seen=np.asarray(rows),
    )


def _again(objective: Callable[[Any], float], best: Any, oofs: dict[int, np.ndarray]) -> np.ndarray:
    import optuna

    objective(optuna.trial.FixedTrial(best.params, number=best.number))
    return oofs[best.number]


def _importances(study: Any, seed: int) -> dict[str, float] | None:
    """fANOVA parameter importances, or None when there are too few trials to say anything."""
    import optuna

    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
        found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError, ZeroDivisionError):
        return None
    return {k: round(float(v), 4) for k, v in found.items()}
