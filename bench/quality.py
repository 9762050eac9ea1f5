"""How good preauth's model is on the bundled German Credit data, against three peers on the same folds.

10 stratified folds (seeded) of the 1,000 rows with their real outcome (Risk). On each fold:

  - preauth: the training library end to end (``preauth.training.train`` on the other nine folds:
    its own holdout, the search, the choice between the tuned parameters and the regularised
    default on that holdout, calibration, threshold, refit on all nine folds), with the schema's
    monotone constraints, and once more without them (``--no-monotone``);
  - logistic regression (one-hot categories, standardised numbers, L2, C=1);
  - XGBoost with its default parameters (native categories, 100 rounds);
  - scikit-learn's HistGradientBoostingClassifier with its defaults (native categories).

For each: ROC AUC (mean ± sd over folds), ECE (10 equal-width bins) on the pooled out-of-fold
predictions of all 1,000 rows and, noisier, averaged over the 100-row folds, Brier score, monotonicity
violations (applicants of the test fold whose predicted risk falls anywhere as Credit amount or
Duration rises, or rises as a balance moves up its levels, the rest of the application fixed),
cost per applicant with the 5:1 cost matrix (preauth at its own threshold; the peers at the Bayes
cut 1/6, right for calibrated probabilities), the mean predicted p(bad) against the observed rate, and training time per fold.
Then each issue-9 goal with the measured figure and its ratio to the goal, and for the monotone
runs which candidate shipped, which calibration map was chosen and what the map cost in AUC
against the booster's raw scores (a map with flat steps ties applicants; the centred isotonic map
does not).

Experiments, not shipped (issue 9's AUC goal with the constraints on): a logistic regression whose
coefficients on the constrained numbers are bounded to their direction (linear, or with cumulative
step features under the same bound), alone and averaged with the fold's preauth monotone run (not
trained again), on the probability or the logit scale, with the weight 0.5 or chosen on the fold's
training part from both models' out-of-sample predictions there. A non-negative average of curves
that never fall never falls: the sweep checks it through the blended function and asserts 0.
bench/default_path.py measures blends on the margin scale against the shipped default over many
reshuffles of these folds, without the search (seconds per seed instead of minutes).

    .venv/bin/python bench/quality.py [--trials 30] [--folds 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "src" / "preauth" / "data" / "german_credit_risk.csv"
SWEEPS = {  # the German schema's constrained fields: numbers over a range, ordered balances by level code
    "Credit amount": np.linspace(250, 20000, 25),
    "Duration": np.arange(4, 73, 4, dtype=float),
    "Saving accounts": np.arange(4, dtype=float),  # little, moderate, quite rich, rich
    "Checking account": np.arange(3, dtype=float),  # little, moderate, rich
}
BAYES_CUT = 1 / 6
STEPS = 8  # cumulative step features per constrained number in the step variant (quantiles)


def ece(y: np.ndarray, p: np.ndarray) -> float:
    from preauth.calibration import expected_calibration_error

    value = expected_calibration_error(y, p, bins=10)
    assert value is not None
    return value


def violations(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, features: list[str]) -> int:
    """Applicant-field pairs whose predicted risk moves against the schema's direction anywhere as
    the field rises (falls for an increasing field, rises for a decreasing one)."""
    from preauth.features import monotone_constraints

    directions = monotone_constraints(features)
    assert set(directions) == set(SWEEPS), f"the sweeps must cover the schema's directions: {directions}"
    count = 0
    for name, grid in SWEEPS.items():
        j = features.index(name)
        curves = []
        for value in grid:
            swept = x.copy()
            swept[:, j] = value
            curves.append(predict(swept))
        steps = np.diff(np.column_stack(curves), axis=1)
        against = steps < 0 if directions[name] == "increasing" else steps > 0
        count += int(np.any(against, axis=1).sum())
    return count


def peer_codes(x: np.ndarray, features: list[str]) -> np.ndarray:
    """preauth's matrix as the peers get it: every category a plain one, its missing level a code
    of its own. preauth codes an ordered category by its place in the order and its missing level
    (German balances: "unknown", the safest checking level) as missing; the peers keep the
    unordered coding they had before the balances were ordered, so that change is not theirs to bear."""
    from preauth.applications import field_by_name

    out = x.copy()
    for j, name in enumerate(features):
        f = field_by_name(name)
        if f.ordered and f.missing_is_unknown:
            out[:, j] = np.where(np.isnan(out[:, j]), len(f.categories), out[:, j])
    return out


def peer_types(features: list[str]) -> list[str]:
    """XGBoost's feature types for :func:`peer_codes`: every category ``c``."""
    from preauth.applications import field_by_name

    return ["c" if field_by_name(name).is_category else "q" for name in features]


def to_frame(x: np.ndarray, features: list[str]) -> Any:
    """The encoded matrix back to a frame of values (category codes to levels) for the linear models."""
    import pandas as pd

    from preauth.applications import field_by_name

    frame = pd.DataFrame(peer_codes(x, features), columns=features)
    for name in features:
        if field_by_name(name).is_category:
            levels = np.array(field_by_name(name).levels(), dtype=object)
            codes = frame[name].to_numpy()
            frame[name] = np.where(np.isnan(codes), None, levels[np.nan_to_num(codes).astype(int)])
    return frame


class ConstrainedLogistic:
    """EXPERIMENT, not shipped: the bench's logistic regression (one-hot categories, standardised
    numbers, L2 with C=1) whose coefficients on the schema's constrained fields keep their direction,
    fit by L-BFGS-B with those bounds. A constrained number's coefficient is >= 0 ("increasing") or
    <= 0; with ``steps`` > 0 it also gets cumulative step features (1 when the value exceeds one of
    ``steps`` quantiles of the training part) under the same bound, so the model's curve in that
    number is a monotone ramp plus steps instead of a straight line. A constrained ordered category
    (German: the two balances) is coded as cumulative level indicators (1 when the level is at or
    above the k-th) under the bound, plus a free indicator for its missing level, which is outside
    the order. Either way risk cannot move against a direction, so an average with the monotone
    booster cannot either.
    """

    def __init__(self, features: list[str], steps: int = 0, c: float = 1.0) -> None:
        from preauth.applications import GERMAN, field_by_name
        from preauth.features import monotone_constraints

        self.features = features
        self.steps = steps
        self.c = c
        every = {
            name: (1 if way == "increasing" else -1) for name, way in monotone_constraints(features).items()
        }
        # per ordered category, its levels' codes in order (its missing level has none)
        self.levels = {n: GERMAN.level_codes[n] for n in every if field_by_name(n).is_category}
        self.constrained = {n: way for n, way in every.items() if n not in self.levels}  # the numbers
        self.ordered = {n: way for n, way in every.items() if n in self.levels}
        self.plain = [n for n in features if n not in self.levels]  # what the one-hot/scaling part sees
        self.free_signs: dict[str, float] = {}  # each constrained number's coefficient fit without bounds
        self.held: dict[str, tuple[int, int]] = {}  # per constrained number: coefficients held at 0, of

    def _design(self, frame: Any) -> tuple[np.ndarray, list[tuple[float | None, float | None]]]:
        from preauth.training.baselines import _inputs

        matrix = self.prep.transform(_inputs(frame, self.plain))
        matrix = np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=np.float64)
        names = list(self.prep.get_feature_names_out())
        columns = [matrix]
        bounds: list[tuple[float | None, float | None]] = [(None, None)] * matrix.shape[1]
        for name, way in self.constrained.items():
            bound = (0.0, None) if way > 0 else (None, 0.0)
            bounds[names.index(f"numbers__{name}")] = bound
            value = frame[name].to_numpy(dtype=np.float64)
            for cut in self.cuts[name]:
                columns.append((np.nan_to_num(value, nan=-np.inf) > cut).astype(np.float64)[:, None])
                bounds.append(bound)
        for name, way in self.ordered.items():
            codes = frame[name].map(self.levels[name]).to_numpy(dtype=np.float64, na_value=np.nan)
            for k in range(1, len(self.levels[name])):
                columns.append((np.nan_to_num(codes, nan=-1.0) >= k).astype(np.float64)[:, None])
                bounds.append((0.0, None) if way > 0 else (None, 0.0))
            columns.append(np.isnan(codes).astype(np.float64)[:, None])  # its missing level: free
            bounds.append((None, None))
        return np.hstack(columns), bounds

    def fit(self, frame: Any, y: np.ndarray) -> ConstrainedLogistic:
        from scipy.optimize import minimize

        from preauth.training.baselines import _inputs, logistic_regression

        self.prep = logistic_regression(self.plain)[:-1].fit(_inputs(frame, self.plain))
        self.cuts = {
            name: np.unique(
                np.nanquantile(
                    frame[name].to_numpy(dtype=np.float64), np.linspace(0, 1, self.steps + 2)[1:-1]
                )
            )
            for name in self.constrained
        }
        x, bounds = self._design(frame)
        # the step columns' number, then the ordered categories' columns (never a number's)
        step_of = [name for name in self.constrained for _ in self.cuts[name]]
        step_of += [""] * (x.shape[1] - len(self.prep.get_feature_names_out()) - len(step_of))
        y = np.asarray(y, dtype=np.float64)

        def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
            z = x @ w[1:] + w[0]
            residual = self.c * (1 / (1 + np.exp(-z)) - y)
            value = self.c * float(np.sum(np.logaddexp(0, z) - y * z)) + 0.5 * float(w[1:] @ w[1:])
            return value, np.concatenate([[residual.sum()], x.T @ residual + w[1:]])

        start = np.zeros(x.shape[1] + 1)
        names = list(self.prep.get_feature_names_out())
        linear = {name: 1 + names.index(f"numbers__{name}") for name in self.constrained}
        free = minimize(loss, start, jac=True, method="L-BFGS-B").x
        self.free_signs = {name: float(free[j]) for name, j in linear.items()}
        self.w = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(None, None), *bounds]).x
        for name, j in linear.items():
            own = [j, *(1 + k for k in range(len(names), x.shape[1]) if step_of[k - len(names)] == name)]
            self.held[name] = (int(np.sum(np.abs(self.w[own]) < 1e-8)), len(own))
        return self

    def margin(self, frame: Any) -> np.ndarray:
        """The log-odds of bad risk (what a blend on the margin scale adds)."""
        x, _ = self._design(frame)
        return np.asarray(x @ self.w[1:] + self.w[0], dtype=np.float64)

    def predict(self, frame: Any) -> np.ndarray:
        return np.asarray(1 / (1 + np.exp(-self.margin(frame))), dtype=np.float64)


def blend(p_model: np.ndarray, p_linear: np.ndarray, weight: float, scale: str) -> np.ndarray:
    """Weighted average on the probability or the logit scale: weights >= 0, so the blend of two
    curves that never fall never falls."""
    assert 0.0 <= weight <= 1.0
    if scale == "probability":
        return weight * p_model + (1 - weight) * p_linear

    def logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return np.asarray(np.log(p / (1 - p)))

    z = weight * logit(p_model) + (1 - weight) * logit(p_linear)
    return np.asarray(1 / (1 + np.exp(-z)), dtype=np.float64)


WEIGHTS = np.linspace(0, 1, 21)


def choose_weight(y: np.ndarray, p_model: np.ndarray, p_linear: np.ndarray, scale: str) -> float:
    """The preauth weight with the highest AUC on the training part's own out-of-sample predictions
    (ties: the one nearest 0.5)."""
    from preauth.evaluation import roc_auc

    scores = [(roc_auc(y, blend(p_model, p_linear, w, scale)) or 0.5, -abs(w - 0.5), w) for w in WEIGHTS]
    return float(max(scores)[2])


def main() -> None:
    import xgboost as xgb
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    from preauth.evaluation import expected_cost, roc_auc
    from preauth.features import encode
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
    types = peer_types(features)
    categorical = [t == "c" for t in types]
    splits = list(StratifiedKFold(options.folds, shuffle=True, random_state=options.seed).split(x_all, y_all))

    trained: dict[bytes, Any] = {}

    def preauth_predict(model: Any) -> Callable[[np.ndarray], np.ndarray]:
        def predict(x: np.ndarray) -> np.ndarray:
            return model.calibration.apply(np.asarray(model.booster.inplace_predict(x), dtype=np.float64))

        return predict

    def fit_preauth(monotone: bool) -> Callable[..., Any]:
        def fit(tr: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
            part = dataclasses.replace(
                data,
                frame=data.frame.iloc[tr],
                y=y_all[tr],
                risk=None if data.risk is None else data.risk[tr],
            )
            model = train(part, dataclasses.replace(config, monotone=monotone))
            if monotone:  # kept for the blend experiments, which reuse this fold's run
                trained[tr.tobytes()] = model
            return preauth_predict(model), model.threshold

        return fit

    def fit_logistic(tr: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
        model = logistic_regression(features).fit(_inputs(data.frame.iloc[tr], features), y_all[tr])

        def predict(x: np.ndarray) -> np.ndarray:
            return np.asarray(model.predict_proba(_inputs(to_frame(x, features), features))[:, 1])

        return predict, BAYES_CUT

    Run = tuple[ConstrainedLogistic, np.ndarray, np.ndarray, np.ndarray]
    linear_runs: dict[tuple[bytes, int], Run] = {}
    positions = data.frame.index

    def constrained_run(tr: np.ndarray, steps: int) -> Run:
        """The constrained logistic fit on the fold's training part, and, for choosing a blend weight
        there, both models' out-of-sample predictions on that training part, mirroring preauth's own
        run: the search's folds on its training part, the pre-refit model on its holdout."""
        key = (tr.tobytes(), steps)
        if key not in linear_runs:
            model = trained[tr.tobytes()]
            inner = positions.get_indexer(model.train_rows)
            hold = positions.get_indexer(model.holdout.index)
            assert (inner >= 0).all() and (hold >= 0).all()
            rows = np.concatenate([inner, hold])
            p_model = np.concatenate(
                [model.calibration.apply(model.search.oof), model.holdout["probability"].to_numpy(np.float64)]
            )
            p_linear = np.empty(len(rows), dtype=np.float64)
            parts = [(inner[a], np.arange(len(inner))[b]) for a, b in model.search.splits]
            parts.append((inner, np.arange(len(inner), len(rows))))
            for fit_rows, score_at in parts:
                part = ConstrainedLogistic(features, steps).fit(data.frame.iloc[fit_rows], y_all[fit_rows])
                p_linear[score_at] = part.predict(data.frame.iloc[rows[score_at]])
            linear = ConstrainedLogistic(features, steps).fit(data.frame.iloc[tr], y_all[tr])
            linear_runs[key] = (linear, rows, p_model, p_linear)
        return linear_runs[key]

    weights_chosen: dict[str, list[float]] = {}
    signs: dict[int, list[tuple[dict[str, float], dict[str, tuple[int, int]]]]] = {}

    def fit_constrained(steps: int) -> Callable[..., Any]:
        def fit(tr: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
            linear = ConstrainedLogistic(features, steps).fit(data.frame.iloc[tr], y_all[tr])
            signs.setdefault(steps, []).append((linear.free_signs, linear.held))
            return (lambda x: linear.predict(to_frame(x, features))), BAYES_CUT

        return fit

    def fit_blend(name: str, steps: int, scale: str, weight: float | None) -> Callable[..., Any]:
        """preauth's monotone run of this fold (not trained again) averaged with a constrained
        logistic; ``weight`` None: chosen on the fold's training part."""

        def fit(tr: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
            linear, rows, p_model, p_linear = constrained_run(tr, steps)
            w = weight if weight is not None else choose_weight(y_all[rows], p_model, p_linear, scale)
            weights_chosen.setdefault(name, []).append(w)
            model_predict = preauth_predict(trained[tr.tobytes()])
            return (
                lambda x: blend(model_predict(x), linear.predict(to_frame(x, features)), w, scale)
            ), BAYES_CUT

        return fit

    def fit_xgboost(tr: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
        matrix = xgb.DMatrix(
            peer_codes(x_all[tr], features),
            label=y_all[tr],
            feature_names=features,
            feature_types=types,
            enable_categorical=True,
        )
        booster = xgb.train({"objective": "binary:logistic", "nthread": 1, "seed": options.seed}, matrix, 100)
        return (
            lambda x: np.asarray(booster.inplace_predict(peer_codes(x, features)), dtype=np.float64)
        ), BAYES_CUT

    def fit_hgb(tr: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
        model = HistGradientBoostingClassifier(categorical_features=categorical, random_state=options.seed)
        model.fit(peer_codes(x_all[tr], features), y_all[tr])
        return (lambda x: np.asarray(model.predict_proba(peer_codes(x, features))[:, 1])), BAYES_CUT

    contenders: dict[str, Callable[..., Any]] = {
        "preauth (monotone)": fit_preauth(True),
        "preauth (--no-monotone)": fit_preauth(False),
        "logistic regression": fit_logistic,
        "XGBoost defaults": fit_xgboost,
        "HistGradientBoosting": fit_hgb,
    }
    experiments: dict[str, Callable[..., Any]] = {
        "c-logistic (linear)": fit_constrained(0),
        "c-logistic (steps)": fit_constrained(STEPS),
    }
    for steps, kind in ((0, "linear"), (STEPS, "steps")):
        for scale in ("probability", "logit"):
            for weight in (0.5, None):
                label = f"blend {kind} {scale[:4]} {'w=0.5' if weight else 'w fit'}"
                experiments[label] = fit_blend(label, steps, scale, weight)
    contenders.update(experiments)
    results: dict[str, dict[str, list[float]]] = {}
    pooled_ece: dict[str, float] = {}
    pooled_p: dict[str, np.ndarray] = {}
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
        pooled_p[name] = oof
        print(f"  {name}: done", flush=True)

    rate = float(np.mean(y_all))
    n_sweeps = len(y_all) * len(SWEEPS)
    runs = [trained[tr.tobytes()] for tr, _ in splits]
    shipped = Counter(str(model.search.summary["shipped"]) for model in runs)
    methods = Counter(model.calibration.method for model in runs)
    ties = [  # what the calibration map costs in ranking: AUC on its probabilities minus on the raw scores
        (roc_auc(y_all[te], model.calibration.apply(raw)) or 0.5) - (roc_auc(y_all[te], raw) or 0.5)
        for (_, te), model in zip(splits, runs, strict=True)
        for raw in [np.asarray(model.booster.inplace_predict(x_all[te]), dtype=np.float64)]
    ]
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
        if name == next(iter(experiments)):
            print("experiments, not shipped (blend: preauth monotone + constrained logistic):")
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
    best_peer = max(
        float(np.mean(results[k]["auc"]))
        for k in contenders
        if not k.startswith("preauth") and k not in experiments
    )
    mean_gap = abs(float(np.mean(ours["mean_p"])) - rate)
    print("\nissue 9 goals (preauth with the monotone constraints unless said):")
    print(f"  AUC >= 0.755:                        {auc:.4f}  ratio {auc / 0.755:.4f}")
    print(f"  AUC >= logistic regression's:        {auc:.4f} vs {logistic:.4f}  ratio {auc / logistic:.4f}")
    free_auc = float(np.mean(free["auc"]))
    print(
        f"  without constraints >= best peer:    {free_auc:.4f} vs {best_peer:.4f}  ratio {free_auc / best_peer:.4f}"
    )
    ece_value = pooled_ece["preauth (monotone)"]
    print(f"  ECE <= 0.03 (pooled out-of-fold):    {ece_value:.3f}  ratio {ece_value / 0.03:.2f}")
    from preauth.calibration import ece_noise

    chance = ece_noise(pooled_p["preauth (monotone)"])
    assert chance is not None
    print(
        f"    a perfectly calibrated model with these probabilities on {len(y_all)} rows shows "
        f"{chance.mean:.3f} by chance (95%: <= {chance.upper:.3f}); only an ECE above that says the "
        "calibration is off"
    )
    print(
        f"  monotonicity violations = 0:         {int(np.sum(ours['viol']))} of {n_sweeps} applicant-field sweeps"
    )
    print(f"  |mean p(bad) - observed| <= 0.02:    {mean_gap:.3f}  ratio {mean_gap / 0.02:.2f}")
    print(
        f"\npreauth (monotone) per fold: shipped {', '.join(f'{k} {v}' for k, v in sorted(shipped.items()))} "
        f"(of {options.folds}); calibration {', '.join(f'{k} {v}' for k, v in sorted(methods.items()))}; "
        f"AUC of the calibrated probability minus the raw score's {np.mean(ties):+.4f} on average, "
        f"lowest {np.min(ties):+.4f} (a map that ties applicants the booster told apart costs AUC)"
    )

    print("\nexperiments (not shipped): preauth monotone blended with a constrained logistic regression")
    for name in experiments:
        f = results[name]
        assert int(np.sum(f["viol"])) == 0, f"{name}: {int(np.sum(f['viol']))} monotonicity violations"
        value = float(np.mean(f["auc"]))
        chosen = weights_chosen.get(name)
        weights = f"  preauth weight per fold {' '.join(f'{w:.2f}' for w in chosen)}" if chosen else ""
        print(
            f"  {name:26} AUC {value:.3f} (ratio {value / 0.755:.3f} of 0.755, {value / logistic:.3f} of "
            f"logistic's) paired gain over preauth {np.mean(np.subtract(f['auc'], ours['auc'])):+.4f} "
            f"(sd {np.std(np.subtract(f['auc'], ours['auc'])):.4f}), "
            f"folds better {int(np.sum(np.greater(f['auc'], ours['auc'])))}/{options.folds}{weights}"
        )
    for steps, fits in signs.items():
        for field in fits[0][0]:
            free_values = [free[field] for free, _ in fits]
            held = [at[field] for _, at in fits]
            print(
                f"  c-logistic ({'steps' if steps else 'linear'}) {field}: linear coefficient fit without "
                f"bounds {min(free_values):+.3f}..{max(free_values):+.3f} (standardised); with them, "
                f"{sum(h for h, _ in held)} of {sum(n for _, n in held)} coefficients held at 0 "
                f"over {len(fits)} folds"
            )
    print(
        "  violations: 0 in every experiment (asserted); blend rows' train s: the logistic fits only (the "
        "first row of each partner also fits its in-fold predictions, which the others reuse)"
    )


if __name__ == "__main__":
    main()
