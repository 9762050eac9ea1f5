"""The whole run: holdout, search, threshold, refit, evaluation, and the bundle it is saved in."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..applications import GERMAN, GERMAN_COSTS, Costs, Schema
from ..bundles import save_bundle
from ..calibration import Calibration, chance_fields, expected_calibration_error, fit_calibration
from ..drift import REFERENCE_KEY, training_reference
from ..errors import ConfigurationError, InputError
from ..evaluation import (
    binary_metrics,
    choose_threshold,
    roc_auc,
    with_intervals,
)
from ..features import encode
from ..referral import REVIEW_BAND_KEY, SEEN_KEY, seen_in_training
from .baselines import baselines
from .booster_fit import BoosterFit, FitRequest, fit_here
from .config import TrainingConfig
from .data import LabeledData, _known, data_fingerprint, load_labels
from .search import SearchOutcome, _check_class_sizes, _dmatrix, search, ship, split_holdout

if TYPE_CHECKING:
    from .on_dask import ClusterTraining

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
    calibration: Calibration
    search: SearchOutcome
    train_rows: np.ndarray
    holdout_rows: np.ndarray
    holdout: pd.DataFrame


def train(
    data: LabeledData, config: TrainingConfig, *, progress: bool = False, fit_booster: BoosterFit = fit_here
) -> TrainedModel:
    """Holdout split, search, the choice between the tuned parameters and the regularised default
    on the holdout, calibration, threshold, refit and holdout evaluation; pure (writes no files).

    ``fit_booster`` fits the boosters on many rows (both candidates on the training part, then the
    shipped one on every row for the refit); the search and the calibration are the same whichever
    fits them. When ``data`` is a sample of a larger input (``data.sample``), the split is the one
    the workers made per row, the search, calibration, threshold, baselines and holdout figures run
    on the sample, and the boosters are fit on every row of their part on the workers.
    """
    config.check()
    schema = data.schema
    features = config.features(schema)
    absent = [name for name in features if data.frame[name].isna().all()]
    if absent:  # an optional column the file lacks (Sex, by --include Sex), or one empty on every row
        name = absent[0]
        # Not "no column" alone: a lender's optional field whose column is there but empty on
        # every row was once told the file had no such column, and to --include what it had.
        reason = (
            f"no '{name}' column, yet the model is to use it (--include {name})"
            if name in schema.protected
            else f"'{name}' is empty on every row (or not in the file), yet the model is to use it; "
            f"fill it in, or leave it out (--exclude {name})"
        )
        raise InputError(reason, source=data.provenance["source"])
    _check_class_sizes(data.y, config, data.provenance["source"])
    x = encode(data.frame, features, schema)
    y = data.y
    rows = data.frame.index.to_numpy()
    if data.sample is None:
        train_pos, hold_pos = split_holdout(y, config.holdout_fraction, config.seed)
        n_train, n_hold, n_all = len(train_pos), len(hold_pos), len(y)
    else:
        train_pos, hold_pos = np.flatnonzero(~data.sample.holdout), np.flatnonzero(data.sample.holdout)
        n_train, n_hold, n_all = data.sample.train_rows, data.sample.holdout_rows, data.sample.rows

    with _SearchProgress(config.trials, progress) as on_trial:
        found = search(x[train_pos], y[train_pos], rows[train_pos], features, config, on_trial, schema)

    y_train = y[train_pos]
    dhold = _dmatrix(x[hold_pos], None, features, config.threads, schema)
    tuned = FitRequest(
        part="training part",
        x=x[train_pos],
        y=y_train,
        features=features,
        params=found.params,
        n_rounds=found.n_rounds,
        schema=schema,
    )
    tuned_booster = fit_booster(tuned)
    default_booster = fit_booster(
        replace(tuned, params=found.default_params, n_rounds=found.default.n_rounds)
    )
    found = ship(
        found,
        y[hold_pos],
        tuned_booster.predict(dhold),
        default_booster.predict(dhold),
        features,
        config,
        schema,
    )
    booster = tuned_booster if found.summary["shipped"] == "tuned" else default_booster
    calibration = fit_calibration(
        y_train, found.oof, config.calibration, folds=config.folds, seed=config.seed
    )
    oof = calibration.apply(found.oof)
    if config.threshold is None:
        choice = choose_threshold(y_train, oof, schema.costs)
        threshold = choice.threshold
        rule = {
            "rule": "lowest expected cost on the best trial's calibrated out-of-fold predictions "
            "(training part)",
            "validation_cost": choice.cost,
            "validation_rows": choice.n,
        }
    else:
        threshold = float(config.threshold)
        rule = {"rule": "given by --threshold", "validation_cost": None, "validation_rows": len(y_train)}
    rule.update(cost_false_negative=schema.costs.approve_bad, cost_false_positive=schema.costs.refuse_good)
    rule["costs"] = schema.costs.text

    dtrain = _dmatrix(x[train_pos], y_train, features, config.threads, schema)
    p_train = calibration.apply(booster.predict(dtrain))
    raw_hold = booster.predict(dhold)
    p_hold = calibration.apply(raw_hold)

    y_hold = y[hold_pos]
    scored = (
        f"the {n_hold} holdout rows"
        if data.sample is None
        else (f"a {len(hold_pos)}-row seeded sample of the {n_hold} holdout rows")
    )
    holdout_rows = (
        f"{scored} the search never saw, scored by the model fit on the "
        f"{n_train}-row training part" + (" before the refit on all rows" if config.refit else "")
    )
    holdout_metrics = with_intervals(
        binary_metrics(y_hold, p_hold, threshold, measured_against=data.measured_against, costs=schema.costs),
        y_hold,
        p_hold,
        resamples=config.bootstrap,
        seed=config.seed,
        costs=schema.costs,
    )
    holdout_metrics["rows"] = holdout_rows
    against_risk = None
    known = _known(data.risk[hold_pos]) if data.risk is not None else None
    if data.target == "llm" and data.risk is not None and known is not None:
        risk_hold_known = data.risk[hold_pos][known].astype(np.int64)
        against_risk = with_intervals(
            binary_metrics(
                risk_hold_known,
                p_hold[known],
                threshold,
                measured_against=data.outcome_measure,
                costs=schema.costs,
            ),
            risk_hold_known,
            p_hold[known],
            resamples=config.bootstrap,
            seed=config.seed,
            costs=schema.costs,
        )
        against_risk["rows"] = holdout_rows
    train_auc = roc_auc(y_train, p_train)
    validation = binary_metrics(
        y_train, oof, threshold, measured_against=data.measured_against, costs=schema.costs
    )
    validation["rows"] = (
        f"out-of-fold predictions on the {len(train_pos)}-row training part ({config.folds} folds)"
        if data.sample is None
        else f"out-of-fold predictions on a {len(train_pos)}-row seeded sample of the {n_train}-row "
        f"training part ({config.folds} folds)"
    )
    if config.refit:
        # The holdout has said what it can; the shipped model now learns from it too (the shipped
        # candidate's parameters and rounds: `found` is ship's answer by now), so no labelled row is
        # wasted. Nothing measured above changes.
        booster = fit_booster(
            FitRequest(
                part="all rows",
                x=x,
                y=y,
                features=features,
                params=found.params,
                n_rounds=found.n_rounds,
                schema=schema,
            )
        )
    truths = {data.measured_against: (np.arange(len(hold_pos)), y_hold)}
    if against_risk is not None and known is not None and data.risk is not None:
        truths[data.outcome_measure] = (np.flatnonzero(known), data.risk[hold_pos][known].astype(np.int64))
    frame = data.frame
    compared = baselines(
        features, frame.iloc[train_pos], y_train, found.splits, frame.iloc[hold_pos], truths, schema
    )
    for name, block in compared["holdout"].items():
        block["model_auc"] = (holdout_metrics if name == data.measured_against else against_risk or {}).get(
            "roc_auc"
        )
    compared["cv"]["model_auc"] = found.cv_auc
    metrics = {
        "measured_against": data.measured_against,
        "holdout": holdout_metrics,
        "baselines": compared,
        "validation": validation,
        "refit": {
            "applied": config.refit,
            "rows": n_all if config.refit else n_train,
            "shipped_model": (
                f"refit on all {n_all} rows (training part + holdout) with the chosen parameters and "
                f"{found.n_rounds} rounds, after the holdout evaluation; every holdout figure measures "
                f"the {n_train}-row model before it"
                if config.refit
                else f"fit on the {n_train}-row training part (--no-refit): the model the holdout measured"
            ),
        },
        "calibration": _calibration_metrics(y_hold, raw_hold, p_hold, y_train, data.measured_against),
        "train_auc": train_auc,
        "cv_auc": found.cv_auc,
        "auc_gap": (train_auc - found.cv_auc) if train_auc is not None else None,
        "against_risk": against_risk,
    }

    holdout = data.frame.iloc[hold_pos][list(schema.field_names)].copy()
    holdout["label"] = y_hold.astype(np.int64)
    risk_hold = data.risk[hold_pos] if data.risk is not None else [pd.NA] * len(hold_pos)
    holdout["risk"] = pd.array(risk_hold, dtype="Int64")
    holdout["probability"] = p_hold.astype(np.float64)
    holdout["raw_probability"] = raw_hold.astype(np.float64)

    params = {**found.params, "num_boost_round": found.n_rounds}
    return TrainedModel(
        booster=booster,
        features=features,
        threshold=threshold,
        threshold_rule=rule,
        params=params,
        metrics=metrics,
        calibration=calibration,
        search=found,
        train_rows=rows[train_pos],
        holdout_rows=rows[hold_pos],
        holdout=holdout,
    )


def _calibration_metrics(
    y_hold: np.ndarray, raw: np.ndarray, calibrated: np.ndarray, y_train: np.ndarray, measured_against: str
) -> dict[str, Any]:
    """Holdout ECE and Brier before and after calibration, beside the Brier of a constant guess.

    The constant is the training part's rate of bad risk: the score a model with no information
    would get, and the least a probability worth serving must beat. Beside the ECE, what a
    perfectly calibrated model would show by chance with the same probabilities on as many rows
    (:func:`.calibration.ece_noise`): on a 200-row holdout that is about 0.06, so an ECE under it
    says nothing against the calibration.
    """
    base_rate = float(np.mean(y_train))
    return {
        "measured_against": measured_against,
        "n": len(y_hold),
        "ece_bins": 10,
        "ece_raw": expected_calibration_error(y_hold, raw),
        "ece": expected_calibration_error(y_hold, calibrated),
        **chance_fields(calibrated),
        "brier_raw": float(np.mean((raw - y_hold) ** 2)),
        "brier": float(np.mean((calibrated - y_hold) ** 2)),
        "base_rate": base_rate,
        "brier_base_rate": float(np.mean((base_rate - y_hold) ** 2)),
        "mean_probability_raw": float(np.mean(raw)),
        "mean_probability": float(np.mean(calibrated)),
        "observed_rate": float(np.mean(y_hold)),
    }


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
    calibration_method: str = "none"
    report_path: Path | None = None
    costs: Costs = GERMAN_COSTS
    """What the threshold was chosen for (the schema's ``[costs]``)."""
    threshold_given: bool = False
    """Whether ``--threshold`` set it (else the costs chose it)."""


def bundle_meta(
    data: LabeledData, model: TrainedModel, config: TrainingConfig, duration_s: float
) -> dict[str, Any]:
    """The training half of ``bundle.json`` (bundles.save_bundle adds format, schema, versions).

    For a sample of a larger input, the fingerprint, the training ranges and the row counts are
    the whole input's (reduced on the workers); the drift reference is the sample's.
    """
    sample = data.sample
    return {
        "target": data.target,
        "params": model.params,
        "metrics": model.metrics,
        "label_provenance": data.provenance,
        "data_fingerprint": (
            data_fingerprint(data.frame, data.y, data.schema) if sample is None else sample.fingerprint
        ),
        "threshold_rule": model.threshold_rule,
        "calibration": model.calibration.as_json(),
        "excluded": [c for c in data.schema.field_names if c not in model.features],
        SEEN_KEY: (
            seen_in_training(_fit_rows(data, model), model.features, data.schema)
            if sample is None
            else sample.seen
        ),
        REFERENCE_KEY: _reference(data, model),
        REVIEW_BAND_KEY: config.review_band,
        "search": model.search.summary,
        "training": {
            "config": {**asdict(config), "exclude": list(config.exclude), "include": list(config.include)},
            "rows": {
                "train": len(model.train_rows) if sample is None else sample.train_rows,
                "holdout": len(model.holdout_rows) if sample is None else sample.holdout_rows,
                "shipped_model": int(model.metrics["refit"]["rows"]),
            },
            "duration_s": round(duration_s, 3),
        },
    }


def _reference(data: LabeledData, model: TrainedModel) -> dict[str, Any]:
    """What monitoring compares live decisions with (see :mod:`preauth.drift`): the inputs of the
    rows the shipped model was fit on, and out-of-sample scores (out-of-fold on the training part,
    the holdout's from the model before the refit) as the score's."""
    rows = _fit_rows(data, model)
    scores = np.concatenate(
        [model.calibration.apply(model.search.oof), model.holdout["probability"].to_numpy()]
    )
    shipped = int(model.metrics["refit"]["rows"])
    inputs = (
        f"the {len(rows)} rows the shipped model was fit on"
        if data.sample is None
        else f"a {len(rows)}-row seeded sample of the {shipped} rows the shipped model was fit on"
    )
    return training_reference(
        rows,
        model.features,
        data.schema,
        scores,
        source=f"inputs: {inputs}; score: {len(scores)} out-of-sample probabilities (out-of-fold on "
        "the training part, and the holdout's)" + ("" if data.sample is None else ", of the same sample"),
    )


def _fit_rows(data: LabeledData, model: TrainedModel) -> pd.DataFrame:
    """The rows the shipped model was fit on: all of them after the refit, else the training part."""
    if model.metrics["refit"]["applied"]:
        return data.frame
    return data.frame[data.frame.index.isin(model.train_rows)]


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", index=True)
    return buffer.getvalue()


def train_from_file(
    labels_path: str | Path,
    config: TrainingConfig,
    models_dir: Path,
    progress: bool = True,
    schema: Schema = GERMAN,
    truth: str | Path | None = None,
    cluster: ClusterTraining | None = None,
) -> TrainingResult:
    """Train on a labels file and write a new bundle under ``models_dir``; the library front door.

    The bundle carries ``schema``: whatever uses the model reads applications with it.
    ``truth``: a file with the real outcomes of the same applicants, to measure against.
    ``cluster``: read, check and hold the labels on Dask's workers and fit the boosters on all
    rows there (``train --dask``); this process holds a bounded sample
    (:mod:`preauth.training.on_dask`). The bundle is the same format, its ``training.engine``
    says where it was trained.
    """
    started = time.perf_counter()
    config.check()
    config.features(schema)  # fail on a bad --exclude/--include before reading any data
    if cluster is None:
        data = load_labels(labels_path, config.target, schema, truth)
        model = train(data, config, progress=progress)
        engine: dict[str, Any] = {"name": "one process"}
    else:
        if truth is not None:
            raise ConfigurationError(
                "--truth joins the whole labels file with the outcomes file: train without --dask to use it"
            )
        held = cluster.load(str(labels_path), config, schema)
        try:
            data = held.data
            model = train(data, config, progress=progress, fit_booster=held.fit)
        finally:
            held.release()
        engine = held.meta()
    duration = time.perf_counter() - started
    meta = bundle_meta(data, model, config, duration)
    meta["training"]["engine"] = engine
    trials_csv = model.search.trials.to_csv(index=False).encode("utf-8")
    path = save_bundle(
        Path(models_dir),
        model.booster,
        features=model.features,
        threshold=model.threshold,
        meta=meta,
        extra_files={"holdout.parquet": _parquet_bytes(model.holdout), "trials.csv": trials_csv},
        schema=schema,
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
        calibration_method=model.calibration.method,
        report_path=report_path,
        costs=data.schema.costs,
        threshold_given=config.threshold is not None,
    )


def _write_report(bundle_path: Path) -> Path | None:
    """Build the bundle's report.html (imported here: matplotlib is only needed once a model exists)."""
    from ..report import write_report

    return Path(write_report(bundle_path))
