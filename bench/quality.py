"""How good preauth's model is on the bundled German Credit data, against three peers on the same folds.

10 stratified folds (seeded) of the 1,000 rows with their real outcome (Risk). On each fold:

  - preauth: the training library end to end (``preauth.training.train`` on the other nine folds:
    its own holdout, the search, calibration, threshold, refit on all nine folds), with the
    schema's monotone constraints, and once more without them (``--no-monotone``);
  - logistic regression (one-hot categories, standardised numbers, L2, C=1);
  - XGBoost with its default parameters (native categories, 100 rounds);
  - scikit-learn's HistGradientBoostingClassifier with its defaults (native categories).

For each: ROC AUC (mean ± sd over folds), ECE (10 equal-width bins) on the pooled out-of-fold
predictions of all 1,000 rows and, noisier, averaged over the 100-row folds, Brier score, monotonicity
violations (applicants of the test fold whose predicted risk falls anywhere as Credit amount or
Duration rises, the rest of the application fixed), cost per applicant with the 5:1 cost matrix
(preauth at its own threshold; the peers at the Bayes cut 1/6, right for calibrated
probabilities), the mean predicted p(bad) against the observed rate, and training time per fold.
Then each issue-9 goal with the measured figure and its ratio to the goal.

    .venv/bin/python bench/quality.py [--trials 30] [--folds 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "src" / "preauth" / "data" / "german_credit_risk.csv"
SWEEPS = {"Credit amount": np.linspace(250, 20000, 25), "Duration": np.arange(4, 73, 4, dtype=float)}
BAYES_CUT = 1 / 6


def ece(y: np.ndarray, p: np.ndarray) -> float:
    from preauth.calibration import expected_calibration_error

    value = expected_calibration_error(y, p, bins=10)
    assert value is not None
    return value


def violations(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, features: list[str]) -> int:
    """Applicant-field pairs whose predicted risk falls anywhere as the field rises."""
    count = 0
    for name, grid in SWEEPS.items():
        j = features.index(name)
        curves = []
        for value in grid:
            swept = x.copy()
            swept[:, j] = value
            curves.append(predict(swept))
        count += int(np.any(np.diff(np.column_stack(curves), axis=1) < 0, axis=1).sum())
    return count


def main() -> None:
    import xgboost as xgb
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    from preauth.evaluation import expected_cost, roc_auc
    from preauth.features import encode, feature_types
    from preauth.training import TrainingConfig, load_labels, train
    from preauth.training.baselines import _inputs, logistic_regression

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=TrainingConfig().trials)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()

    data = load_labels(DATA, "risk")
    config = TrainingConfig(target="risk", trials=options.trials, seed=options.seed)
    features = config.features()
    x_all = encode(data.frame, features)
    y_all = data.y
    types = feature_types(features)
    categorical = [t == "c" for t in types]
    splits = list(StratifiedKFold(options.folds, shuffle=True, random_state=options.seed).split(x_all, y_all))

    def fit_preauth(monotone: bool) -> Callable[..., Any]:
        def fit(tr: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
            part = dataclasses.replace(
                data,
                frame=data.frame.iloc[tr],
                y=y_all[tr],
                risk=None if data.risk is None else data.risk[tr],
            )
            model = train(part, dataclasses.replace(config, monotone=monotone))

            def predict(x: np.ndarray) -> np.ndarray:
                return model.calibration.apply(np.asarray(model.booster.inplace_predict(x), dtype=np.float64))

            return predict, model.threshold

        return fit

    def fit_logistic(tr: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
        model = logistic_regression(features).fit(_inputs(data.frame.iloc[tr], features), y_all[tr])

        def predict(x: np.ndarray) -> np.ndarray:
            import pandas as pd

            frame = pd.DataFrame(x, columns=features)
            for j, name in enumerate(features):  # codes back to levels for the one-hot encoder
                if types[j] == "c":
                    from preauth.applications import field_by_name

                    levels = np.array(field_by_name(name).levels(), dtype=object)
                    codes = frame[name].to_numpy()
                    frame[name] = np.where(np.isnan(codes), None, levels[np.nan_to_num(codes).astype(int)])
            return np.asarray(model.predict_proba(_inputs(frame, features))[:, 1])

        return predict, BAYES_CUT

    def fit_xgboost(tr: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
        matrix = xgb.DMatrix(
            x_all[tr], label=y_all[tr], feature_names=features, feature_types=types, enable_categorical=True
        )
        booster = xgb.train({"objective": "binary:logistic", "nthread": 1, "seed": options.seed}, matrix, 100)
        return (lambda x: np.asarray(booster.inplace_predict(x), dtype=np.float64)), BAYES_CUT

    def fit_hgb(tr: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
        model = HistGradientBoostingClassifier(categorical_features=categorical, random_state=options.seed)
        model.fit(x_all[tr], y_all[tr])
        return (lambda x: np.asarray(model.predict_proba(x)[:, 1])), BAYES_CUT

    contenders: dict[str, Callable[..., Any]] = {
        "preauth (monotone)": fit_preauth(True),
        "preauth (--no-monotone)": fit_preauth(False),
        "logistic regression": fit_logistic,
        "XGBoost defaults": fit_xgboost,
        "HistGradientBoosting": fit_hgb,
    }
    results: dict[str, dict[str, list[float]]] = {}
    pooled_ece: dict[str, float] = {}
    for name, fit in contenders.items():
        figures: dict[str, list[float]] = {
            k: [] for k in ("auc", "ece", "brier", "viol", "cost", "mean_p", "secs")
        }
        oof = np.empty(len(y_all), dtype=np.float64)
        for tr, te in splits:
            started = time.perf_counter()
            predict, threshold = fit(tr)
            figures["secs"].append(time.perf_counter() - started)
            p = predict(x_all[te])
            oof[te] = p
            y = y_all[te]
            figures["auc"].append(roc_auc(y, p) or 0.5)
            figures["ece"].append(ece(y, p))
            figures["brier"].append(float(np.mean((p - y) ** 2)))
            figures["viol"].append(violations(predict, x_all[te], features))
            figures["cost"].append(expected_cost(y, p, threshold))
            figures["mean_p"].append(float(np.mean(p)))
        results[name] = figures
        pooled_ece[name] = ece(y_all, oof)
        print(f"  {name}: done", flush=True)

    rate = float(np.mean(y_all))
    n_sweeps = len(y_all) * len(SWEEPS)
    print(
        f"\ndata: {DATA.name}, {len(y_all)} rows, real outcome (Risk), observed rate of bad risk {rate:.3f}; "
        f"{options.folds} stratified folds (seed {options.seed}), the same for every model; "
        f"preauth with {options.trials} completed trials per fold"
    )
    header = (
        f"{'model':26} {'ROC AUC':>15} {'ECE':>6} {'(fold)':>6} {'Brier':>6} {'violations':>12} "
        f"{'cost 5:1':>8} {'mean p':>7} {'train s':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, f in results.items():
        print(
            f"{name:26} {np.mean(f['auc']):7.3f} ± {np.std(f['auc']):.3f} {pooled_ece[name]:6.3f} "
            f"{np.mean(f['ece']):6.3f} "
            f"{np.mean(f['brier']):6.3f} {int(np.sum(f['viol'])):5d}/{n_sweeps:<6d} {np.mean(f['cost']):8.3f} "
            f"{np.mean(f['mean_p']):7.3f} {np.mean(f['secs']):8.2f}"
        )
    print(f"{'constant base rate':26} {0.5:7.3f}         {'':6} {'':6} {rate * (1 - rate):6.3f}")
    print(f"{'approve everyone':26} {'':15} {'':6} {'':6} {'':6} {'':12} {5 * rate:8.3f}")
    print(f"{'refuse everyone':26} {'':15} {'':6} {'':6} {'':6} {'':12} {1 - rate:8.3f}")
    print("ECE: pooled out-of-fold predictions of all rows; (fold): the mean over the folds' own ECE")

    ours = results["preauth (monotone)"]
    free = results["preauth (--no-monotone)"]
    auc = float(np.mean(ours["auc"]))
    logistic = float(np.mean(results["logistic regression"]["auc"]))
    best_peer = max(float(np.mean(results[k]["auc"])) for k in contenders if not k.startswith("preauth"))
    mean_gap = abs(float(np.mean(ours["mean_p"])) - rate)
    print("\nissue 9 goals (preauth with the monotone constraints unless said):")
    print(f"  AUC >= 0.755:                        {auc:.3f}  ratio {auc / 0.755:.3f}")
    print(f"  AUC >= logistic regression's:        {auc:.3f} vs {logistic:.3f}  ratio {auc / logistic:.3f}")
    free_auc = float(np.mean(free["auc"]))
    print(
        f"  without constraints >= best peer:    {free_auc:.3f} vs {best_peer:.3f}  ratio {free_auc / best_peer:.3f}"
    )
    ece_value = pooled_ece["preauth (monotone)"]
    print(f"  ECE <= 0.03 (pooled out-of-fold):    {ece_value:.3f}  ratio {ece_value / 0.03:.2f}")
    print(
        f"  monotonicity violations = 0:         {int(np.sum(ours['viol']))} of {n_sweeps} applicant-field sweeps"
    )
    print(f"  |mean p(bad) - observed| <= 0.02:    {mean_gap:.3f}  ratio {mean_gap / 0.02:.2f}")


if __name__ == "__main__":
    main()
