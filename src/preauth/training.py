"""Training: a labels file → a tuned XGBoost model in a versioned bundle, with an honest holdout.

The steps, in the order they touch the data:

1. read the labels (provider labels in ``target``, or the real outcome ``Risk``) and leave out
   unlabeled rows; ``Risk`` is carried along only to *measure*, never to train or tune, unless
   the user asked for ``--target risk``;
2. set a stratified holdout aside before anything else looks at the data;
3. search hyperparameters with Optuna's TPE sampler, maximising ROC AUC under stratified k-fold
   cross-validation on the training part only, with early stopping and median pruning;
4. choose the decision threshold on the best trial's out-of-fold predictions (lowest expected
   cost with the German Credit cost matrix);
5. refit on the whole training part with the best parameters and the cross-validated number of
   boosting rounds, then evaluate once on the holdout.

Bad risk is the positive class (1). ``scale_pos_weight`` starts from negatives/positives, so the
minority class is the one up-weighted (the original pipeline encoded *good* as 1 and up-weighted
the majority by mistake); the search moves it around that ratio but never across 1.

Runs are reproducible: the sampler, the folds, the holdout and XGBoost are all seeded, and
XGBoost runs on a fixed number of threads.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .applications import (
    DEFAULT_EXCLUDED,
    FIELD_NAMES,
    OUTCOME,
    canonical_column,
    feature_columns,
    normalize_name,
    read_table,
    validate,
)
from .bundles import save_bundle
from .errors import ConfigurationError, InputError
from .evaluation import (
    COST_FALSE_NEGATIVE,
    COST_FALSE_POSITIVE,
    agreement,
    binary_metrics,
    choose_threshold,
    roc_auc,
)
from .features import encode, feature_types

Target = Literal["llm", "risk"]
TARGET_COLUMN = "target"
GOOD, BAD = "good risk", "bad risk"
_LABEL_CODES = {"good risk": 0, "bad risk": 1, "good": 0, "bad": 1}
RISK_MEASURE = "real outcome (Risk)"
MAX_REJECTS_KEPT = 100
"""Rejected rows whose reasons go into the bundle's label provenance (all are counted)."""


@dataclass(frozen=True)
class TrainingConfig:
    """Every choice a training run makes; saved in the bundle so a run can be repeated.

    ``exclude`` lists columns left out *in addition to* the default (``Sex``); ``include`` brings
    a default-excluded column back.
    """

    trials: int = 30
    timeout: float | None = None
    seed: int = 42
    folds: int = 5
    holdout_fraction: float = 0.2
    target: Target = "llm"
    exclude: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    threshold: float | None = None
    threads: int = 1
    """XGBoost threads. Fixed so that a seed gives the same model on any machine; on 1,000 rows one
    thread is also the fastest (thread start-up costs more than the work it shares)."""
    max_rounds: int = 1000
    early_stopping_rounds: int = 50

    def check(self) -> None:
        if self.trials < 1:
            raise ConfigurationError("--trials must be at least 1")
        if self.folds < 2:
            raise ConfigurationError("--folds must be at least 2")
        if not 0 < self.holdout_fraction < 1:
            raise ConfigurationError("the holdout fraction must be between 0 and 1")
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ConfigurationError(f"--threshold must be between 0 and 1, got {self.threshold}")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigurationError("--timeout must be positive")
        if self.target not in ("llm", "risk"):
            raise ConfigurationError(f"--target must be llm or risk, got '{self.target}'")

    def features(self) -> list[str]:
        """The model's input columns: the schema minus the default and the asked-for exclusions."""
        exclude = _canonical_fields(self.exclude, "--exclude")
        include = _canonical_fields(self.include, "--include")
        columns = feature_columns(exclude=(*DEFAULT_EXCLUDED, *exclude), include=include)
        if not columns:
            raise ConfigurationError("every column is excluded: the model needs at least one input")
        return columns


def _canonical_fields(names: Sequence[str], option: str) -> list[str]:
    out = []
    for name in names:
        canonical = canonical_column(name)
        if canonical not in FIELD_NAMES:
            known = ", ".join(FIELD_NAMES)
            raise ConfigurationError(f"{option}: unknown column '{name}'; the model's columns are: {known}")
        out.append(canonical)
    return out


# --------------------------------------------------------------------------------------------
# Labels


@dataclass
class LabeledData:
    """Validated applications with a 0/1 label each (1 = bad risk) and, when known, the outcome."""

    frame: pd.DataFrame  # canonical columns, index = 1-based row in the source
    y: np.ndarray
    risk: np.ndarray | None  # 1 = bad, the real outcome; None when the file has no Risk column
    target: Target
    measured_against: str
    counts: dict[str, int]
    provenance: dict[str, Any]
    rejects: list[str] = field(default_factory=list)


def load_labels(path: str | Path, target: Target = "llm") -> LabeledData:
    """Read a labels file: the application columns plus ``target`` (good risk/bad risk) or ``Risk``.

    Rows with an empty ``target`` are unlabeled and left out; rows that fail validation or carry
    an unreadable label are rejected with their reason; both are counted, never silently dropped.
    """
    source = str(path)
    table = read_table(path)
    target_column = next((c for c in table.columns if normalize_name(str(c)) == TARGET_COLUMN), None)
    if target == "llm" and target_column is None:
        raise InputError(
            "no 'target' column (good risk / bad risk); label the file with `preauth label`, "
            "or train on the real outcome with --target risk",
            source=source,
        )
    apps = validate(table, source=source)
    if target == "risk" and not apps.has_outcome:
        raise InputError("no 'Risk' column: --target risk needs the real outcome", source=source)
    positions = apps.frame.index.to_numpy() - 1
    rejects = apps.reject_messages()
    # 1 bad, 0 good, NaN where a row has no outcome: such a row is neither trained on with
    # --target risk nor counted when measuring against Risk. It is never read as good risk.
    known_risk = apps.frame[OUTCOME.name].notna().to_numpy() if apps.has_outcome else None
    risk_all = None
    if known_risk is not None and known_risk.any():
        bad = (apps.frame[OUTCOME.name] == "bad").to_numpy(dtype=np.float64)
        risk_all = np.where(known_risk, bad, np.nan)

    if target == "llm":
        assert target_column is not None
        text = table[target_column].iloc[positions].astype(str).str.strip().str.lower().to_numpy()
        unlabeled = np.isin(text, ["", "nan", "none", "null", "na"])
        codes = pd.Series(text).map(_LABEL_CODES).to_numpy(dtype=np.float64)
        unreadable = np.isnan(codes) & ~unlabeled
        for i in np.flatnonzero(unreadable):
            raw = table[target_column].iloc[positions[i]]
            error = InputError(
                f"'{raw}' is not a label (good risk / bad risk)",
                source=source,
                row=int(positions[i]) + 1,
                column=str(target_column),
            )
            rejects.append(str(error))
        keep = ~unlabeled & ~unreadable
        y = codes[keep].astype(np.int64)
    else:
        assert known_risk is not None
        unlabeled = ~known_risk
        keep = known_risk
        y = (apps.frame[OUTCOME.name] == "bad").to_numpy(dtype=np.int64)[keep]

    counts = {
        "rows": len(table),
        "rejected": len(rejects),
        "unlabeled": int(unlabeled.sum()),
        "used": int(keep.sum()),
        "bad_risk": int(y.sum()),
        "good_risk": int(len(y) - y.sum()),
    }
    if counts["used"] == 0:
        raise InputError(
            f"no labeled rows to train on ({counts['unlabeled']} unlabeled, {counts['rejected']} rejected)",
            source=source,
        )
    frame = apps.frame[keep]
    risk = risk_all[keep] if risk_all is not None else None
    provenance = _provenance(table, positions[keep], source, target, target_column, y, risk)
    return LabeledData(
        frame=frame,
        y=y,
        risk=risk,
        target=target,
        measured_against=provenance["measured_against"],
        counts=counts,
        provenance={**provenance, "counts": counts, "rejected_rows": rejects[:MAX_REJECTS_KEPT]},
        rejects=rejects,
    )


def _known(risk: np.ndarray | None) -> np.ndarray | None:
    """Where the outcome is known, or None when it is known nowhere."""
    if risk is None:
        return None
    known = ~np.isnan(risk)
    return known if known.any() else None


def _agreement_where_known(y: np.ndarray, risk: np.ndarray | None) -> dict[str, Any] | None:
    known = _known(risk)
    if risk is None or known is None:
        return None
    return agreement(y[known], risk[known].astype(np.int64))


def _most_common(table: pd.DataFrame, name: str, positions: np.ndarray) -> str | None:
    column = next((c for c in table.columns if normalize_name(str(c)) == name), None)
    if column is None:
        return None
    values = [v.strip() for v in table[column].iloc[positions].astype(str) if v.strip()]
    return Counter(values).most_common(1)[0][0] if values else None


def _provenance(
    table: pd.DataFrame,
    positions: np.ndarray,
    source: str,
    target: Target,
    target_column: str | None,
    y: np.ndarray,
    risk: np.ndarray | None,
) -> dict[str, Any]:
    if target == "risk":
        return {
            "source": source,
            "target": "risk",
            "target_column": OUTCOME.name,
            "measured_against": RISK_MEASURE,
            "provider": None,
            "model": None,
            "prompt_version": None,
            "agreement_with_risk": None,
        }
    provider = _most_common(table, "provider", positions)
    model = _most_common(table, "model", positions)
    prompt = _most_common(table, "prompt_version", positions)
    if provider:
        # The model names the labeller (two LLMs behind one prompt are different labels); the
        # prompt version is added when it is not the model's own (rules: rubric-v1 is both).
        measured = f"labels from {provider}/{model or prompt or 'unknown model'}"
        if prompt and model and prompt != model:
            measured += f" (prompts {prompt})"
    else:
        measured = f"labels from {Path(source).name}"
    return {
        "source": source,
        "target": "llm",
        "target_column": target_column,
        "measured_against": measured,
        "provider": provider,
        "model": model,
        "prompt_version": prompt,
        "agreement_with_risk": _agreement_where_known(y, risk),
    }


def data_fingerprint(frame: pd.DataFrame, y: np.ndarray) -> str:
    """sha256 of the training rows as the model saw them (canonical values and the 0/1 label)."""
    rows = frame[list(FIELD_NAMES)].copy()
    rows["label"] = y
    return hashlib.sha256(rows.to_csv(index=True, lineterminator="\n").encode("utf-8")).hexdigest()


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

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=config.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
        study_name="preauth",
    )

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial is not None:
            complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
            on_trial(trial.number, study.best_value if complete else None)

    study.optimize(objective, n_trials=config.trials, timeout=config.timeout, callbacks=[report])
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
        oof=oofs[best.number],
        trials=trials,
        summary=summary,
        rows_seen=np.asarray(rows),
    )


def _importances(study: Any, seed: int) -> dict[str, float] | None:
    """fANOVA parameter importances, or None when there are too few trials to say anything."""
    import optuna

    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
        found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError, ZeroDivisionError):
        return None
    return {k: round(float(v), 4) for k, v in found.items()}


# --------------------------------------------------------------------------------------------
# The whole run


@dataclass
class TrainedModel:
    """A fitted model and everything measured about it, before it is written anywhere."""

    booster: Any
    features: list[str]
    threshold: float
    threshold_rule: dict[str, Any]
    params: dict[str, Any]
    metrics: dict[str, Any]
    search: SearchOutcome
    train_rows: np.ndarray
    holdout_rows: np.ndarray
    holdout: pd.DataFrame


def train(data: LabeledData, config: TrainingConfig, *, progress: bool = False) -> TrainedModel:
    """Holdout split, search, threshold, refit and holdout evaluation; pure (writes no files)."""
    import xgboost as xgb

    config.check()
    features = config.features()
    absent = [name for name in features if data.frame[name].isna().all()]
    if absent:  # only an optional column the file lacks is empty on every row (Sex, by --include Sex)
        raise InputError(
            f"no '{absent[0]}' column, yet the model is to use it (--include {absent[0]})",
            source=data.provenance["source"],
        )
    _check_class_sizes(data.y, config, data.provenance["source"])
    x = encode(data.frame, features)
    y = data.y
    rows = data.frame.index.to_numpy()
    train_pos, hold_pos = split_holdout(y, config.holdout_fraction, config.seed)

    with _SearchProgress(config.trials, progress) as on_trial:
        found = search(x[train_pos], y[train_pos], rows[train_pos], features, config, on_trial)

    y_train = y[train_pos]
    if config.threshold is None:
        choice = choose_threshold(y_train, found.oof)
        threshold = choice.threshold
        rule = {
            "rule": "lowest expected cost on the best trial's out-of-fold predictions (training part)",
            "validation_cost": choice.cost,
            "validation_rows": choice.n,
        }
    else:
        threshold = float(config.threshold)
        rule = {"rule": "given by --threshold", "validation_cost": None, "validation_rows": len(y_train)}
    rule.update(cost_false_negative=COST_FALSE_NEGATIVE, cost_false_positive=COST_FALSE_POSITIVE)
    rule["costs"] = "approving a bad applicant costs 5, refusing a good one costs 1"

    dtrain = _dmatrix(x[train_pos], y_train, features, config.threads)
    booster = xgb.train(found.params, dtrain, num_boost_round=found.n_rounds)
    p_train = booster.predict(dtrain)
    p_hold = booster.predict(_dmatrix(x[hold_pos], None, features, config.threads))

    y_hold = y[hold_pos]
    holdout_metrics = binary_metrics(y_hold, p_hold, threshold, measured_against=data.measured_against)
    against_risk = None
    known = _known(data.risk[hold_pos]) if data.risk is not None else None
    if data.target == "llm" and data.risk is not None and known is not None:
        risk_hold_known = data.risk[hold_pos][known].astype(np.int64)
        against_risk = binary_metrics(
            risk_hold_known, p_hold[known], threshold, measured_against=RISK_MEASURE
        )
    train_auc = roc_auc(y_train, p_train)
    metrics = {
        "measured_against": data.measured_against,
        "holdout": holdout_metrics,
        "validation": binary_metrics(y_train, found.oof, threshold, measured_against=data.measured_against),
        "train_auc": train_auc,
        "cv_auc": found.cv_auc,
        "auc_gap": (train_auc - found.cv_auc) if train_auc is not None else None,
        "against_risk": against_risk,
    }

    holdout = data.frame.iloc[hold_pos][list(FIELD_NAMES)].copy()
    holdout["label"] = y_hold.astype(np.int64)
    risk_hold = data.risk[hold_pos] if data.risk is not None else [pd.NA] * len(hold_pos)
    holdout["risk"] = pd.array(risk_hold, dtype="Int64")
    holdout["probability"] = p_hold.astype(np.float64)

    params = {**found.params, "num_boost_round": found.n_rounds}
    return TrainedModel(
        booster=booster,
        features=features,
        threshold=threshold,
        threshold_rule=rule,
        params=params,
        metrics=metrics,
        search=found,
        train_rows=rows[train_pos],
        holdout_rows=rows[hold_pos],
        holdout=holdout,
    )


class _SearchProgress:
    """A rich progress bar over the search trials on stderr, or nothing."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self._progress: Any = None

    def __enter__(self) -> Callable[[int, float | None], None] | None:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]search[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            transient=False,
        )
        self._progress.start()
        task = self._progress.add_task("", total=self.total)

        def on_trial(number: int, best: float | None) -> None:
            text = f"best CV AUC {best:.3f}" if best is not None else ""
            self._progress.update(task, advance=1, description=text)

        return on_trial

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


@dataclass
class TrainingResult:
    """What ``train_from_file`` wrote and measured."""

    bundle_path: Path
    version: str
    metrics: dict[str, Any]
    label_counts: dict[str, int]
    threshold: float
    features: list[str]
    search: dict[str, Any]
    provenance: dict[str, Any]
    rejects: list[str]
    duration_s: float
    report_path: Path | None = None


def bundle_meta(
    data: LabeledData, model: TrainedModel, config: TrainingConfig, duration_s: float
) -> dict[str, Any]:
    """The training half of ``bundle.json`` (bundles.save_bundle adds format, schema, versions)."""
    return {
        "target": data.target,
        "params": model.params,
        "metrics": model.metrics,
        "label_provenance": data.provenance,
        "data_fingerprint": data_fingerprint(data.frame, data.y),
        "threshold_rule": model.threshold_rule,
        "excluded": [c for c in FIELD_NAMES if c not in model.features],
        "search": model.search.summary,
        "training": {
            "config": {**asdict(config), "exclude": list(config.exclude), "include": list(config.include)},
            "rows": {"train": len(model.train_rows), "holdout": len(model.holdout_rows)},
            "duration_s": round(duration_s, 3),
        },
    }


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", index=True)
    return buffer.getvalue()


def train_from_file(
    labels_path: str | Path, config: TrainingConfig, models_dir: Path, progress: bool = True
) -> TrainingResult:
    """Train on a labels file and write a new bundle under ``models_dir``; the library front door."""
    started = time.perf_counter()
    config.check()
    config.features()  # fail on a bad --exclude/--include before reading any data
    data = load_labels(labels_path, config.target)
    model = train(data, config, progress=progress)
    duration = time.perf_counter() - started
    trials_csv = model.search.trials.to_csv(index=False).encode("utf-8")
    path = save_bundle(
        Path(models_dir),
        model.booster,
        features=model.features,
        threshold=model.threshold,
        meta=bundle_meta(data, model, config, duration),
        extra_files={"holdout.parquet": _parquet_bytes(model.holdout), "trials.csv": trials_csv},
    )
    report_path = _write_report(path)
    return TrainingResult(
        bundle_path=path,
        version=path.name,
        metrics=model.metrics,
        label_counts=data.counts,
        threshold=model.threshold,
        features=model.features,
        search=model.search.summary,
        provenance=data.provenance,
        rejects=data.rejects,
        duration_s=time.perf_counter() - started,
        report_path=report_path,
    )


def _write_report(bundle_path: Path) -> Path | None:
    """Build report.html when the report module is installed (it is optional for training)."""
    try:
        from .report import write_report  # type: ignore[attr-defined]
    except ImportError:
        return None
    return Path(write_report(bundle_path))
