"""Monitoring: is a served model still seeing what it was trained on, and is it still right?

:func:`monitor` reads one model's decisions from the decision store over a window and answers
with plain data (the CLI prints it, the service returns it as JSON and as Prometheus gauges, the
page draws it: one path):

* drift: the population stability index of every model input and of the score against the
  model's training reference (:mod:`preauth.drift`), flagged ``watch`` at 0.1 and ``act`` at 0.25;
* decision rates per day or week: approve, decline, refer (and the score's PSI per period);
* once outcomes exist (``preauth outcomes import``): live AUC with a bootstrap interval,
  calibration (mean predicted vs observed default rate, ECE) and approval vs default rate by
  score band.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import eq, floordiv, is_not, sub
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import sqlalchemy as sa

from .applications import Schema
from .bundles import read_bundle_schema, read_meta
from .calibration import chance_fields, expected_calibration_error
from .decisions import APPROVE, BAD_RISK, DECLINE, REFER
from .drift import (
    ACT,
    EPSILON,
    WATCH,
    bin_labels,
    canonical_column_values,
    flag,
    live_counts,
    psi,
    reference_for,
    reference_shares,
)
from .evaluation import auc_interval, roc_auc
from .outcomes import outcomes
from .store import DecisionStore, as_utc, decisions, filtered

Every = Literal["day", "week"]
BANDS = 10
"""Score bands for approval vs default: equal-width bands of P(bad risk), 0–10%, 10–20%, ..."""
AUC_RESAMPLES = 200
"""Bootstrap resamples of the live AUC's interval (a 95% percentile interval)."""
FEW_ROWS = 100
"""Below this many decisions PSI is mostly noise (about bins/rows): the report says so."""
CHUNK = 10_000
"""Decisions read and counted at a time: the report's memory grows by a few bytes a decision, not
by its stored application."""
DECISIONS = (APPROVE, DECLINE, REFER)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Decided:
    """The stored decisions monitoring reads, one array per column; their inputs already counted.

    Only counts of the inputs are kept (per model input, how many fell in each bin of its
    reference): drift needs nothing else, and a week of decisions is hundreds of thousands of
    stored applications.
    """

    day: np.ndarray
    """The UTC day each decision was made (``datetime64[D]``)."""
    probability: np.ndarray
    decision: np.ndarray
    """Index of each decision in :data:`DECISIONS` (``len(DECISIONS)``: something else)."""
    known: np.ndarray
    """Whether its outcome is known."""
    defaulted: np.ndarray
    """Whether its known outcome is ``defaulted``."""
    input_counts: dict[str, np.ndarray]
    """Per model input of the reference: live counts per bin (empty without a reference)."""


def read_decided(
    store: DecisionStore,
    model_version: str,
    *,
    since: datetime | None,
    until: datetime | None,
    reference: Mapping[str, Any] | None = None,
    schema: Schema | None = None,
    chunk: int = CHUNK,
) -> Decided:
    """One model's decisions in ``[since, until)`` with their outcomes, read a chunk at a time.

    With a reference (and the bundle's schema) each stored application is parsed once (orjson, on
    the text the database holds: no copy through SQLAlchemy's JSON type) and counted into the
    reference's bins under the schema's field names; without one the applications are not read.
    """
    columns: list[sa.ColumnElement[Any]] = [
        decisions.c.created_at,  # SQLite's text or PostgreSQL's aware datetime, as the driver gives it
        decisions.c.probability,
        decisions.c.decision,
        decisions.c.target,
        outcomes.c.outcome,
    ]
    if reference is not None and schema is not None:
        # the stored JSON as text, for orjson: PostgreSQL's driver would parse it into dicts for us
        columns.append(sa.cast(decisions.c.input, sa.Text).label("input"))
    query = (
        sa.select(*columns)
        .select_from(decisions.outerjoin(outcomes, outcomes.c.decision_id == decisions.c.id))
        .where(decisions.c.model_version == model_version)
        .order_by(decisions.c.created_at)
    )
    statement = filtered(query, since=since, until=until)
    days, probability, decision, known, defaulted = [], [], [], [], []
    counts: dict[str, np.ndarray] = {}
    names: dict[str, str | None] = {}
    code = {name: i for i, name in enumerate(DECISIONS)}
    with store.engine.connect() as connection, _driver_rows(connection, statement, chunk) as chunks:
        for rows in chunks:
            columns_of = list(zip(*rows, strict=True))
            days.append(utc_days(columns_of[0]))
            probability.append(np.array(columns_of[1], dtype=np.float64))
            # a decision stored before the decision column: approve or decline by its target
            decided = columns_of[2]
            if None in decided:
                decided = tuple(
                    d or (DECLINE if t == BAD_RISK else APPROVE)
                    for d, t in zip(decided, columns_of[3], strict=True)
                )
            # map with C functions: no Python frame per row
            n = len(rows)
            decision.append(np.fromiter(map(code.get, decided, repeat(len(DECISIONS))), np.int8, n))
            known.append(np.fromiter(map(is_not, columns_of[4], repeat(None)), bool, n))
            defaulted.append(np.fromiter(map(eq, columns_of[4], repeat("defaulted")), bool, n))
            if reference is not None and schema is not None:
                add_counts(counts, reference, schema, names, columns_of[5])
    return Decided(
        day=np.concatenate(days) if days else np.array([], dtype="datetime64[D]"),
        probability=np.concatenate(probability) if probability else np.array([], dtype=np.float64),
        decision=np.concatenate(decision) if decision else np.array([], dtype=np.int8),
        known=np.concatenate(known) if known else np.array([], dtype=bool),
        defaulted=np.concatenate(defaulted) if defaulted else np.array([], dtype=bool),
        input_counts=counts,
    )


@contextlib.contextmanager
def _driver_rows(connection: sa.Connection, statement: Any, chunk: int) -> Iterator[Iterator[Sequence[Any]]]:
    """The statement's rows from the driver itself, ``chunk`` at a time.

    No column monitoring reads has a result processor to apply, and SQLAlchemy's row objects cost
    as much as the fetch. SQLite steps through its rows as they are fetched. PostgreSQL gets a
    server-side cursor of the driver's own, so it holds a chunk of rows, not the window (not
    SQLAlchemy's streamed result's cursor: its result has already buffered the first rows).
    """
    if not connection.dialect.supports_server_side_cursors:
        cursor = connection.execute(statement).cursor
        yield iter(lambda: cursor.fetchmany(chunk), [])
        return
    compiled = statement.compile(dialect=connection.dialect)
    driver = connection.connection.dbapi_connection
    assert driver is not None
    named = driver.cursor(name="preauth_monitoring")
    try:
        named.execute(str(compiled), compiled.params)
        yield iter(lambda: named.fetchmany(chunk), [])
    finally:
        named.close()


def utc_days(moments: Sequence[Any]) -> np.ndarray:
    """The UTC days of stored times: SQLite's text (UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``) or
    PostgreSQL's aware datetimes (in the session's zone)."""
    if all(type(m) is str for m in moments):
        return np.array([m[:10] for m in moments], dtype="datetime64[D]")
    try:  # whole days since the epoch, an exact division of aware times, with C functions
        days = map(floordiv, map(sub, moments, repeat(EPOCH)), repeat(timedelta(days=1)))
        return np.fromiter(days, np.int64, len(moments)).astype("datetime64[D]")
    except TypeError:  # a time without a zone: UTC, as everywhere in the store
        return np.array([as_utc(m).date() for m in moments], dtype="datetime64[D]")


def add_counts(
    counts: dict[str, np.ndarray],
    reference: Mapping[str, Any],
    schema: Schema,
    names: dict[str, str | None],
    texts: Sequence[str],
) -> None:
    """Count one chunk of stored applications (JSON text, kept as given under any alias) into the
    bins of every model input of the reference, by the schema's field names."""
    given: list[dict[str, Any]] = list(map(orjson.loads, texts))
    if None in given:  # a JSON null stored as the application: nothing given
        given = [application or {} for application in given]
    # the keys of an application in order, numbered: a few shapes cover a whole chunk
    shapes: dict[tuple[str, ...], int] = {}
    shape = [shapes.setdefault(keys, len(shapes)) for keys in map(tuple, given)]
    for key in {key for keys in shapes for key in keys} - names.keys():
        names[key] = schema.canonical_column(str(key))
    for name, ref in reference["inputs"].items():
        # per shape, the key it gives this field under: the last of its spellings, as a dict of
        # the application by field names would keep; None when it has none
        spelled = [next((k for k in reversed(keys) if names[k] == name), None) for keys in shapes]
        if len(set(spelled)) == 1:
            only = spelled[0]
            values = list(map(dict.get, given, repeat(only))) if only is not None else [None] * len(given)
        else:
            values = [
                a.get(k) if k is not None else None
                for a, k in zip(given, map(spelled.__getitem__, shape), strict=True)
            ]
        found = live_counts(ref, canonical_column_values(values, name, schema))
        counts[name] = counts[name] + found if name in counts else found


def drift_of(reference: Mapping[str, Any], values: Sequence[Any] | np.ndarray) -> dict[str, Any]:
    """PSI of live values against one reference, its flag, and the shares bin by bin."""
    return counted_drift(reference, live_counts(reference, values), len(values))


def counted_drift(reference: Mapping[str, Any], counts: np.ndarray, n: int) -> dict[str, Any]:
    """:func:`drift_of` from the live counts per bin of ``n`` values."""
    expected = reference_shares(reference)
    actual = counts / n if n else counts
    value = psi(expected, actual) if n else None
    return {
        "psi": value,
        "flag": flag(value),
        "bins": [
            {"bin": label, "reference": float(e), "live": float(a)}
            for label, e, a in zip(bin_labels(reference), expected, actual, strict=True)
        ],
    }


def rates(decided: np.ndarray) -> dict[str, float | None]:
    """Share of approve, decline and refer among decisions (indices in :data:`DECISIONS`; None when none)."""
    n = len(decided)
    return {
        f"{name}_rate": (int(np.count_nonzero(decided == i)) / n) if n else None
        for i, name in enumerate(DECISIONS)
    }


def periods(decided: Decided, every: Every, reference: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Per day or week: decisions, their rates, and the score's PSI in that period."""
    starts = decided.day
    if every == "week":  # back to the Monday: 1970-01-01, day 0, was a Thursday
        starts = starts - (starts.astype(np.int64) + 3) % 7
    found, group = np.unique(starts, return_inverse=True)
    if not len(found):
        return []
    order = np.argsort(group, kind="stable")
    bounds = np.cumsum(np.bincount(group, minlength=len(found)))
    out = []
    for start, rows in zip(found.tolist(), np.split(order, bounds[:-1]), strict=True):
        score_psi = (
            drift_of(reference["score"], decided.probability[rows])["psi"] if reference is not None else None
        )
        out.append(
            {
                "start": datetime(start.year, start.month, start.day, tzinfo=UTC).isoformat(),
                "decisions": len(rows),
                **rates(decided.decision[rows]),
                "score_psi": score_psi,
            }
        )
    return out


def live_quality(decided: Decided, *, resamples: int = AUC_RESAMPLES, seed: int = 0) -> dict[str, Any] | None:
    """AUC (with interval), calibration and bands, on the decisions with an outcome; None without."""
    known = decided.known
    if not known.any():
        return None
    y = decided.defaulted[known].astype(np.int64)
    p = decided.probability[known]
    auc = roc_auc(y, p)
    interval = auc_interval(y, p, resamples=resamples, seed=seed) if auc is not None else None
    return {
        "outcomes": int(known.sum()),
        "defaulted": int(y.sum()),
        "auc": auc,
        "auc_interval": interval,
        "auc_method": f"95% percentile bootstrap over {resamples} resamples"
        if auc is not None
        else "needs both repaid and defaulted outcomes",
        "calibration": {
            "mean_predicted": float(p.mean()),
            "observed_default_rate": float(y.mean()),
            "ece": expected_calibration_error(y, p),
            **chance_fields(p),
        },
        "bands": score_bands(decided),
    }


def score_bands(decided: Decided) -> list[dict[str, Any]]:
    """Per band of P(bad risk): decisions, approval rate, outcomes known and their default rate."""
    index = np.minimum((decided.probability * BANDS).astype(np.int64), BANDS - 1)
    inside = index >= 0

    def per_band(mask: np.ndarray) -> list[int]:
        return np.bincount(index[inside & mask], minlength=BANDS).tolist()

    every = per_band(np.ones(len(index), dtype=bool))
    approved = per_band(decided.decision == DECISIONS.index(APPROVE))
    known = per_band(decided.known)
    defaulted = per_band(decided.known & decided.defaulted)
    return [
        {
            "band": f"{b / BANDS:.0%}–{(b + 1) / BANDS:.0%}",
            "low": b / BANDS,
            "high": (b + 1) / BANDS,
            "decisions": every[b],
            "approval_rate": approved[b] / every[b],
            "outcomes": known[b],
            "default_rate": (defaulted[b] / known[b]) if known[b] else None,
        }
        for b in range(BANDS)
        if every[b]
    ]


def monitor(
    store: DecisionStore,
    bundle_dir: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    every: Every = "day",
    resamples: int = AUC_RESAMPLES,
) -> dict[str, Any]:
    """The monitoring report of the model in ``bundle_dir`` over ``[since, until)`` (JSON-ready)."""
    meta = read_meta(bundle_dir)
    schema = read_bundle_schema(bundle_dir, meta)
    version = str(meta["version"])
    reference = reference_for(bundle_dir, meta, schema)
    decided = read_decided(store, version, since=since, until=until, reference=reference, schema=schema)
    n = len(decided.decision)
    report: dict[str, Any] = {
        "model_version": version,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "every": every,
        "decisions": n,
        "thresholds": {"watch": WATCH, "act": ACT, "epsilon": EPSILON},
        "reference": (
            {"source": reference.get("source"), "rows": reference.get("rows")}
            if reference is not None
            else None
        ),
        "notes": [],
        **rates(decided.decision),
        "inputs": [],
        "score": None,
        "periods": periods(decided, every, reference),
        "live": live_quality(decided, resamples=resamples),
    }
    if reference is None:
        report["notes"].append(
            f"model {version} has no training reference (bundle.json) and no holdout.parquet: "
            "PSI cannot be computed for it (retrain to get one)"
        )
    elif n:
        for name, ref in reference["inputs"].items():
            report["inputs"].append({"feature": name, **counted_drift(ref, decided.input_counts[name], n)})
        report["score"] = drift_of(reference["score"], decided.probability)
    if n == 0:
        report["notes"].append(f"no decisions by model {version} in this window: nothing to monitor yet")
    elif n < FEW_ROWS:
        report["notes"].append(f"only {n} decisions: PSI on fewer than {FEW_ROWS} is mostly noise")
    report["worst"] = worst_flag(report)
    return report


def worst_flag(report: Mapping[str, Any]) -> str | None:
    """The most serious flag of any input or of the score: ``act``, ``watch``, ``ok`` or None."""
    found = [item.get("flag") for item in report.get("inputs", [])]
    if report.get("score"):
        found.append(report["score"].get("flag"))
    for level in ("act", "watch", "ok"):
        if level in found:
            return level
    return None
