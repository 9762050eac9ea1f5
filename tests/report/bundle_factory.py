"""A real model bundle for the report and page tests, trained here on the bundled German Credit data.

Until `preauth.training` exists this builds what training writes (``bundle.json`` with metrics and
label provenance, ``holdout.parquet``, ``trials.csv``, ``model.ubj``) with a small real XGBoost model
and a short real Optuna search. The labels it learns from are a simple documented rubric, not
``Risk``, so the report has provider labels and real outcomes to compare.
"""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import xgboost as xgb
from sklearn import metrics as skm
from sklearn.model_selection import StratifiedKFold, train_test_split

from preauth import applications, bundles, features

COST_BAD_APPROVED = 5.0
COST_GOOD_REFUSED = 1.0


def rubric_labels(frame: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """1 = bad risk by a points rubric with some seeded noise, as an LLM's labels would have."""
    points = (
        2.0 * (frame["Checking account"] == "little")
        - 1.0 * (frame["Checking account"] == "unknown")
        + 2.0 * (frame["Duration"] > 24)
        + 1.0 * (frame["Credit amount"] > 5000)
        + 1.0 * (frame["Age"] < 25)
        + 1.0 * (frame["Saving accounts"] == "little")
        + 1.0 * (frame["Housing"] == "rent")
    ).to_numpy(dtype=np.float64)
    noise = np.random.default_rng(seed).normal(0.0, 1.2, len(points))
    return (points + noise >= 4.0).astype(np.int64)


def metric_dict(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    predicted = (p >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, predicted, labels=[0, 1]).ravel()
    fpr, tpr, _ = skm.roc_curve(y, p)
    return {
        "roc_auc": float(skm.roc_auc_score(y, p)),
        "pr_auc": float(skm.average_precision_score(y, p)),
        "accuracy": float(skm.accuracy_score(y, predicted)),
        "precision": float(skm.precision_score(y, predicted, zero_division=0)),
        "recall": float(skm.recall_score(y, predicted, zero_division=0)),
        "f1": float(skm.f1_score(y, predicted, zero_division=0)),
        "specificity": float(tn / (tn + fp)) if tn + fp else 0.0,
        "ks": float(np.max(tpr - fpr)),
        "brier": float(skm.brier_score_loss(y, p)),
        "log_loss": float(skm.log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "threshold": float(threshold),
        "n": len(y),
        "positives": int(y.sum()),
    }


def cost_threshold(y: np.ndarray, p: np.ndarray) -> float:
    grid = np.linspace(0.01, 0.99, 99)
    costs = [
        COST_BAD_APPROVED * np.sum((p < t) & (y == 1)) + COST_GOOD_REFUSED * np.sum((p >= t) & (y == 0))
        for t in grid
    ]
    return float(grid[int(np.argmin(costs))])


def build_bundle(models_dir: Path, *, target: str = "rubric", trials: int = 6, seed: int = 7) -> Path:
    """Train and save a bundle; ``target`` is ``rubric`` (provider-like labels) or ``risk``."""
    source = resources.files("preauth") / "data" / "german_credit_risk.csv"
    with resources.as_file(source) as path:
        apps = applications.read_applications(path)
        data_fingerprint = bundles.fingerprint(Path(path).read_bytes())
    frame = apps.frame
    risk = (frame["Risk"] == "bad").to_numpy(dtype=np.int64)
    label = rubric_labels(frame) if target == "rubric" else risk
    columns = applications.feature_columns()
    matrix = features.encode(frame, columns)
    types = features.feature_types(columns)
    train_idx, hold_idx = train_test_split(
        np.arange(len(frame)), test_size=0.2, stratify=label, random_state=seed
    )
    x_train, y_train = matrix[train_idx], label[train_idx]
    ratio = float((y_train == 0).sum() / max(1, (y_train == 1).sum()))

    def dmatrix(x: np.ndarray, y: np.ndarray | None = None) -> xgb.DMatrix:
        return xgb.DMatrix(x, label=y, feature_names=columns, feature_types=types, enable_categorical=True)

    def params_of(trial: optuna.Trial | optuna.trial.FrozenTrial) -> dict[str, Any]:
        return {
            "objective": "binary:logistic",
            "eval_metric": "auc",
            "tree_method": "hist",
            "max_cat_to_onehot": 1,
            "nthread": 1,
            "seed": seed,
            "max_depth": trial.suggest_int("max_depth", 2, 6),
            "eta": trial.suggest_float("eta", 0.03, 0.3, log=True),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 8.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.6, 1.0),
            "scale_pos_weight": trial.suggest_float("scale_pos_weight", ratio * 0.5, ratio * 1.5),
        }

    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    oof = np.zeros(len(y_train))

    def objective(trial: optuna.Trial) -> float:
        params = params_of(trial)
        predictions = np.zeros(len(y_train))
        for fit, val in folds.split(x_train, y_train):
            booster = xgb.train(params, dmatrix(x_train[fit], y_train[fit]), num_boost_round=60)
            predictions[val] = booster.predict(dmatrix(x_train[val]))
        trial.set_user_attr("oof", predictions.tolist())
        return float(skm.roc_auc_score(y_train, predictions))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    best = study.best_trial
    oof = np.asarray(best.user_attrs["oof"])
    threshold = cost_threshold(y_train, oof)
    final = xgb.train(params_of(optuna.trial.FixedTrial(best.params)), dmatrix(x_train, y_train), 60)
    p_hold = final.predict(dmatrix(matrix[hold_idx]))
    p_train = final.predict(dmatrix(x_train))

    measured = "rules/test-rubric labels" if target == "rubric" else "real outcomes (Risk)"
    train_auc = float(skm.roc_auc_score(y_train, p_train))
    meta = {
        "params": best.params,
        "metrics": {
            "measured_against": measured,
            "holdout": metric_dict(label[hold_idx], p_hold, threshold),
            "train_auc": train_auc,
            "cv_auc": float(best.value),
            "auc_gap": train_auc - float(best.value),
            "against_risk": metric_dict(risk[hold_idx], p_hold, threshold) if target == "rubric" else None,
        },
        "label_provenance": {
            "target": "llm" if target == "rubric" else "risk",
            "labels": measured,
            "provider": "rules" if target == "rubric" else None,
            "prompt_version": "test-rubric" if target == "rubric" else None,
            "rows": len(frame),
        },
        "data_fingerprint": data_fingerprint,
        "threshold_rule": "minimum expected cost on cross-validation predictions (bad approved 5, good refused 1)",
        "excluded": list(applications.DEFAULT_EXCLUDED),
        "search": {"trials": trials, "sampler": "TPE", "seed": seed, "objective": "ROC AUC, 3-fold CV"},
    }
    holdout = frame.iloc[hold_idx][list(applications.FIELD_NAMES)].reset_index(drop=True)
    holdout["label"] = label[hold_idx]
    holdout["risk"] = pd.array(risk[hold_idx], dtype="Int64")
    holdout["probability"] = p_hold.astype(np.float64)
    parquet = io.BytesIO()
    holdout.to_parquet(parquet, index=False)
    trials_csv = study.trials_dataframe(attrs=("number", "state", "value", "params")).to_csv(index=False)
    return bundles.save_bundle(
        models_dir,
        final,
        features=columns,
        threshold=threshold,
        meta=meta,
        extra_files={"holdout.parquet": parquet.getvalue(), "trials.csv": trials_csv.encode()},
    )


def labels_file(risk_csv: Path, out: Path) -> Path:
    """A labels file as `preauth label` writes it: the applications, Risk, and the rubric's labels."""
    apps = applications.read_applications(risk_csv)
    table = pd.read_csv(risk_csv, index_col=0)
    table["id"] = apps.ids.to_numpy()
    table["target"] = np.where(rubric_labels(apps.frame) == 1, "bad risk", "good risk")
    table["provider"], table["model"], table["prompt_version"] = "rules", "test-rubric", "rubric-test"
    table.to_csv(out, index=False)
    return out
