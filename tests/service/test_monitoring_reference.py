"""Monitoring reads and counts a chunk at a time; its report must be the one of the plain computation.

``monitor`` counts the stored applications into the reference's bins chunk by chunk, from the
driver's rows, and bootstraps the live AUC without a sort per resample. Here the plain computation
it replaced (every row through SQLAlchemy, every application as a dict by field names, every value
binned one by one, every resample sorted) is kept as the reference, and both reports must be
equal to the last bit, on SQLite and PostgreSQL, over stores that hold what stored applications
can hold: alias spellings, two spellings of one field, missing and unseen values, numbers as text,
decisions stored before the decision column, outcomes.
"""

from __future__ import annotations

import json
import math
import shutil
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from preauth import applications, bundles, drift, evaluation, features
from preauth.applications import Schema
from preauth.bundles import read_bundle_schema, read_meta
from preauth.calibration import ece_noise, expected_calibration_error
from preauth.decisions import APPROVE, BAD_RISK, DECLINE, GOOD_RISK, REFER
from preauth.monitoring import AUC_RESAMPLES, BANDS, FEW_ROWS, monitor, worst_flag
from preauth.monitoring_reads import CHUNK, read_rows, snapshot
from preauth.outcomes import outcomes
from preauth.pipeline import bundled_data
from preauth.store import DecisionStore, as_utc, decisions, filtered

DATA = bundled_data("german_credit_risk.csv")
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # a Monday
DAYS = 17


# -- the plain computation, as monitoring did it before counting in chunks ---------------------


def _level(value: Any) -> str:
    missing = value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
    return drift.MISSING if missing else str(value)


def _plain_shares(reference: Mapping[str, Any], values: Sequence[Any]) -> np.ndarray:
    if "levels" in reference:
        levels = [str(level) for level in reference["levels"]]
        position = {level: i for i, level in enumerate(levels)}
        counts = np.zeros(len(levels) + 1)
        for value in values:
            counts[position.get(_level(value), len(levels))] += 1
        return counts / len(values) if len(values) else counts
    numbers = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(np.float64)
    edges = np.asarray(reference["edges"], dtype=np.float64)
    counts = np.zeros(len(edges) + 2)
    if len(numbers) == 0:
        return counts
    missing = np.isnan(numbers)
    np.add.at(counts, np.searchsorted(edges, numbers[~missing], side="left"), 1)
    counts[-1] = missing.sum()
    return counts / len(numbers)


def _plain_drift(reference: Mapping[str, Any], values: Sequence[Any]) -> dict[str, Any]:
    expected = drift.reference_shares(reference)
    actual = _plain_shares(reference, values)
    value = drift.psi(expected, actual) if len(values) else None
    return {
        "psi": value,
        "flag": drift.flag(value),
        "bins": [
            {"bin": label, "reference": float(e), "live": float(a)}
            for label, e, a in zip(drift.bin_labels(reference), expected, actual, strict=True)
        ],
    }


def _plain_rates(decided: Sequence[str]) -> dict[str, float | None]:
    n = len(decided)
    return {
        f"{name}_rate": (sum(1 for d in decided if d == name) / n) if n else None
        for name in (APPROVE, DECLINE, REFER)
    }


def _plain_monitor(
    store: DecisionStore,
    bundle_dir: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    every: str = "day",
) -> dict[str, Any]:
    meta = read_meta(bundle_dir)
    schema: Schema = read_bundle_schema(bundle_dir, meta)
    version = str(meta["version"])
    reference = drift.reference_for(bundle_dir, meta, schema)
    query = (
        sa.select(
            decisions.c.created_at,
            decisions.c.input,
            decisions.c.probability,
            decisions.c.decision,
            decisions.c.target,
            outcomes.c.outcome,
        )
        .select_from(decisions.outerjoin(outcomes, outcomes.c.decision_id == decisions.c.id))
        .where(decisions.c.model_version == version)
        .order_by(decisions.c.created_at, decisions.c.seq)  # seq: the order of equal times
    )
    with store.engine.connect() as connection:
        rows = list(connection.execute(filtered(query, since=since, until=until)))
    created = [as_utc(r.created_at) for r in rows]
    inputs = [dict(r.input or {}) for r in rows]
    probability = np.array([float(r.probability) for r in rows], dtype=np.float64)
    decided = [r.decision or (DECLINE if r.target == BAD_RISK else APPROVE) for r in rows]
    outcome = [r.outcome for r in rows]
    n = len(decided)

    groups: dict[datetime, list[int]] = {}
    for i, moment in enumerate(created):
        day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
        start = day - timedelta(days=day.weekday()) if every == "week" else day
        groups.setdefault(start, []).append(i)
    periods = [
        {
            "start": start.isoformat(),
            "decisions": len(members),
            **_plain_rates([decided[i] for i in members]),
            "score_psi": _plain_drift(reference["score"], probability[members].tolist())["psi"]
            if reference is not None
            else None,
        }
        for start, members in sorted(groups.items())
    ]

    live = None
    known = np.array([o is not None for o in outcome], dtype=bool)
    if known.any():
        y = np.array([o == "defaulted" for o in outcome], dtype=np.int64)[known]
        p = probability[known]
        auc = evaluation.roc_auc(y, p)
        index = np.minimum((probability * BANDS).astype(np.int64), BANDS - 1)
        bands = []
        for b in range(BANDS):
            members = np.flatnonzero(index == b)
            if not len(members):
                continue
            outcomes_known = [outcome[i] for i in members if outcome[i] is not None]
            bands.append(
                {
                    "band": f"{b / BANDS:.0%}–{(b + 1) / BANDS:.0%}",
                    "low": b / BANDS,
                    "high": (b + 1) / BANDS,
                    "decisions": int(len(members)),
                    "approval_rate": sum(1 for i in members if decided[i] == APPROVE) / len(members),
                    "outcomes": len(outcomes_known),
                    "default_rate": (sum(1 for o in outcomes_known if o == "defaulted") / len(outcomes_known))
                    if outcomes_known
                    else None,
                }
            )
        live = {
            "outcomes": int(known.sum()),
            "defaulted": int(y.sum()),
            "auc": auc,
            "auc_interval": evaluation.bootstrap_intervals(y, p, 0.5, resamples=AUC_RESAMPLES, seed=0)[
                "roc_auc"
            ]
            if auc is not None
            else None,
            "auc_method": f"95% percentile bootstrap over {AUC_RESAMPLES} resamples"
            if auc is not None
            else "needs both repaid and defaulted outcomes",
            "calibration": {
                "mean_predicted": float(p.mean()),
                "observed_default_rate": float(y.mean()),
                "ece": expected_calibration_error(y, p),
                "ece_chance": ece_noise(p).mean,  # type: ignore[union-attr]
                "ece_chance_upper": ece_noise(p).upper,  # type: ignore[union-attr]
            },
            "bands": bands,
        }

    report: dict[str, Any] = {
        "model_version": version,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "every": every,
        "decisions": n,
        "thresholds": {"watch": drift.WATCH, "act": drift.ACT, "epsilon": drift.EPSILON},
        "reference": {"source": reference.get("source"), "rows": reference.get("rows")}
        if reference is not None
        else None,
        "notes": [],
        **_plain_rates(decided),
        "inputs": [],
        "score": None,
        "periods": periods,
        "live": live,
    }
    if reference is None:
        report["notes"].append(
            f"model {version} has no training reference (bundle.json) and no holdout.parquet: "
            "PSI cannot be computed for it (retrain to get one)"
        )
    elif n:
        by_field = [
            {
                name: value
                for key, value in given.items()
                if (name := schema.canonical_column(str(key))) is not None
            }
            for given in inputs
        ]
        for name, ref in reference["inputs"].items():
            values = drift.canonical_column_values([row.get(name) for row in by_field], name, schema)
            report["inputs"].append({"feature": name, **_plain_drift(ref, values)})
        report["score"] = _plain_drift(reference["score"], probability.tolist())
    if n == 0:
        report["notes"].append(f"no decisions by model {version} in this window: nothing to monitor yet")
    elif n < FEW_ROWS:
        report["notes"].append(f"only {n} decisions: PSI on fewer than {FEW_ROWS} is mostly noise")
    report["worst"] = worst_flag(report)
    return report


# -- a store holding what stored applications can hold -------------------------------------------


def _bundle_with_reference(referring_models: Path, root: Path) -> Path:
    shutil.copytree(referring_models, root)
    path = root / "v1"
    apps = applications.read_applications(DATA)
    columns = applications.feature_columns()
    scores = bundles.load_bundle(root, "v1").predict_proba(features.encode(apps.frame, columns))
    meta = json.loads((path / bundles.META_FILE).read_text())
    meta[drift.REFERENCE_KEY] = drift.training_reference(
        apps.frame, columns, applications.GERMAN, scores, source="test"
    )
    (path / bundles.META_FILE).write_text(json.dumps(meta))
    return path


def _odd(i: int, record: dict[str, Any]) -> dict[str, Any]:
    """Every so often an application as a client might have sent it."""
    if i % 7 == 0:  # alias spellings
        record = {{"Credit amount": "credit_amount", "Age": "age"}.get(k, k): v for k, v in record.items()}
    if i % 31 == 0:  # two spellings of one field: the last one given wins
        record = {**record, "amount": record.get("Credit amount", 1) * 3}
    if i % 37 == 0:  # a number as text, an unseen level, a field left out, a key of no field
        record = {**record, "Duration": str(record["Duration"]), "Purpose": "spaceship", "note": "x"}
        record.pop("Housing", None)
    if i % 41 == 0:  # a category given as a number or a flag, a missing saving account
        record = {**record, "Sex": 1 if i % 2 else True, "Saving accounts": None}
    if i % 43 == 0:
        record = {**record, "Job": float("nan") if i % 2 else None, "Checking account": float("nan")}
    return record


def _fill(url: str, n: int, *, version: str = "v1", seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    store = DecisionStore(url)
    store.migrate()
    frame = pd.read_csv(DATA, index_col=0).drop(columns=["Risk"])
    frame = frame.astype(object).where(frame.notna(), None)
    records = frame.to_dict("records")
    rows, outcome_rows = [], []
    for i in range(n):
        record = _odd(i, dict(records[i % len(records)]))
        p = float(np.round(rng.beta(2, 5), 2))  # rounded: ties for the AUC's ranks
        bad = p >= 0.5
        ident = str(uuid.UUID(int=(seed << 64) + i + 1))
        moment = START + timedelta(hours=DAYS * 24 * i / n)
        rows.append(
            {
                "id": ident,
                "request_id": f"r{i}",
                "created_at": moment,
                "channel": "api",
                "model_version": version,
                "input": record,
                "probability": p,
                "target": BAD_RISK if bad else GOOD_RISK,
                "is_fraud": bad,
                "confidence": max(p, 1 - p),
                "threshold": 0.5,
                "reasons": [],
                "contributions": None,
                # one in nine stored before the decision column
                "decision": None if i % 9 == 0 else REFER if i % 10 == 0 else DECLINE if bad else APPROVE,
            }
        )
        if i % 3 == 0:
            outcome = "defaulted" if rng.random() < p else "repaid"
            outcome_rows.append(
                {
                    "decision_id": ident,
                    "outcome": outcome,
                    "known_at": moment,
                    "recorded_at": moment,
                    "source": "t",
                }
            )
    with store.engine.begin() as connection:
        connection.execute(sa.insert(decisions), rows)
        connection.execute(sa.insert(outcomes), outcome_rows)
    store.close()


def _assert_same_reports(url: str, bundle_path: Path) -> None:
    store = DecisionStore(url)
    try:
        windows: list[dict[str, Any]] = [
            {},
            {"every": "week"},
            {"since": START + timedelta(days=3), "until": START + timedelta(days=11, hours=5)},
            {"since": START + timedelta(days=40)},  # nothing in it
            {"until": START + timedelta(hours=8)},  # fewer than FEW_ROWS
        ]
        for window in windows:
            found = monitor(store, bundle_path, **window)
            expected = _plain_monitor(store, bundle_path, **window)
            assert found == expected, window
        assert found["decisions"] < FEW_ROWS and found["live"] is not None
        # read in many small chunks: the counts add up, the columns line up
        meta = read_meta(bundle_path)
        schema = read_bundle_schema(bundle_path, meta)
        reference = drift.reference_for(bundle_path, meta, schema)
        with snapshot(store) as connection:
            whole, chunked = (
                read_rows(
                    connection, "v1", since=None, until=None, reference=reference, schema=schema, chunk=size
                )
                for size in (CHUNK, 97)
            )
        assert len(chunked.probability) > 10 * 97
        for column in ("seq", "moment", "probability", "decision"):
            assert np.array_equal(getattr(whole, column), getattr(chunked, column)), column
        assert whole.bins.keys() == chunked.bins.keys() == reference["inputs"].keys()
        for name, bins in whole.bins.items():
            assert np.array_equal(bins, chunked.bins[name]), name
            assert len(bins) == len(whole.probability)
    finally:
        store.close()


@pytest.fixture(scope="module")
def reference_bundle(tmp_path_factory: pytest.TempPathFactory, referring_models: Path) -> Path:
    return _bundle_with_reference(referring_models, tmp_path_factory.mktemp("reference") / "models")


def test_the_report_is_the_plain_computations_on_sqlite(tmp_path: Path, reference_bundle: Path) -> None:
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    _fill(url, 3000)
    _fill(url, 50, version="v9", seed=1)  # another model's decisions are not counted
    report = monitor(DecisionStore(url), reference_bundle)
    assert report["decisions"] == 3000
    assert len(report["periods"]) == DAYS + 1 and report["live"]["outcomes"] == 1000
    purpose = next(item for item in report["inputs"] if item["feature"] == "Purpose")
    assert purpose["bins"][-1] == {"bin": drift.OTHER, "reference": 0.0, "live": pytest.approx(82 / 3000)}
    _assert_same_reports(url, reference_bundle)


def test_the_report_is_the_plain_computations_on_postgresql(
    fresh_postgres_url: str, reference_bundle: Path
) -> None:
    # a session in another zone: its times come back at -05:00 or -04:00, the days are UTC's
    url = f"{fresh_postgres_url}%20-ctimezone%3DAmerica/New_York"
    _fill(url, 1500)
    with DecisionStore(url).engine.connect() as connection:
        assert connection.execute(sa.select(decisions.c.created_at).limit(1)).scalar_one().utcoffset()
    _assert_same_reports(url, reference_bundle)


def test_without_a_reference_the_report_is_the_plain_computations(
    tmp_path: Path, referring_models: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    _fill(url, 400)
    bundle_path = referring_models / "v1"
    report = monitor(DecisionStore(url), bundle_path)
    assert report["reference"] is None and report["inputs"] == [] and report["decisions"] == 400
    assert report == _plain_monitor(DecisionStore(url), bundle_path)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_auc_interval_is_the_bootstrap_intervals_own(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(700) < 0.3).astype(np.int64)
    p = np.round(np.clip(0.2 + 0.3 * y + rng.normal(0, 0.2, 700), 0, 1), 1)  # many ties
    expected = evaluation.bootstrap_intervals(y, p, 0.5, resamples=150, seed=seed)["roc_auc"]
    assert evaluation.auc_interval(y, p, resamples=150, seed=seed) == expected
    few = np.array([1, 0, 0]), np.array([0.2, 0.2, 0.9])  # some resamples hold one class only
    expected = evaluation.bootstrap_intervals(*few, 0.5, resamples=50, seed=seed)["roc_auc"]
    assert evaluation.auc_interval(*few, resamples=50, seed=seed) == expected


def test_category_counts_keep_one_true_and_1_apart() -> None:
    reference = {"levels": ["1", "1.0", "True", drift.MISSING], "shares": [0.25] * 4}
    values = [1, 1.0, True, "1", None, float("nan"), "other"]
    assert drift.live_counts(reference, values).tolist() == [2, 1, 1, 2, 1]
    assert drift.live_counts(reference, ["1", None, "1", "x"]).tolist() == [2, 0, 0, 1, 1]
    assert drift.live_counts(reference, [["a list"], "1"]).tolist() == [1, 0, 0, 0, 1]
