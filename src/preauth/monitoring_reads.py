"""Reading a model's decisions and outcomes from the store, as monitoring needs them.

Per decision a few bytes: its ``seq``, time, score, decision, and per model input the bin of the
reference its value falls in (the stored application parsed once, then forgotten); per outcome
the ``seq`` of its decision and whether it defaulted. :mod:`preauth.monitoring_window` keeps them
from one refresh to the next.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import eq, floordiv, sub
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa

from .applications import Schema
from .decisions import APPROVE, BAD_RISK, DECLINE, REFER
from .drift import bin_count, canonical_column_values, live_bins
from .outcomes import outcomes
from .store import DecisionStore, as_utc, decisions, filtered

CHUNK = 10_000
"""Decisions read and binned at a time: a read holds a chunk of stored applications, not the window."""
DECISIONS = (APPROVE, DECLINE, REFER)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Rows:
    """Stored decisions as read, in ``seq`` order: a few bytes each, their applications binned."""

    seq: np.ndarray
    moment: np.ndarray
    """Decision time, microseconds since the epoch (UTC)."""
    probability: np.ndarray
    decision: np.ndarray
    bins: dict[str, np.ndarray]
    """Per model input of the reference, the bin of each decision's value."""

    @staticmethod
    def of(parts: Sequence[Rows], names: Sequence[str]) -> Rows:
        """The rows of several reads, one after the other (not copied when only one has any)."""
        holding = [p for p in parts if len(p.seq)]
        if len(holding) == 1:
            return holding[0]

        def joined(arrays: list[np.ndarray], dtype: Any) -> np.ndarray:
            return np.concatenate(arrays) if arrays else np.array([], dtype=dtype)

        return Rows(
            seq=joined([p.seq for p in parts], np.int64),
            moment=joined([p.moment for p in parts], np.int64),
            probability=joined([p.probability for p in parts], np.float64),
            decision=joined([p.decision for p in parts], np.int8),
            bins={name: joined([p.bins[name] for p in parts], np.uint8) for name in names},
        )

    def take(self, keep: np.ndarray) -> Rows:
        if keep.dtype == bool and keep.all():
            return self
        return Rows(
            seq=self.seq[keep],
            moment=self.moment[keep],
            probability=self.probability[keep],
            decision=self.decision[keep],
            bins={name: bins[keep] for name, bins in self.bins.items()},
        )


@dataclass(frozen=True)
class Outcomes:
    """Known outcomes by the ``seq`` of their decision (sorted, each once)."""

    seq: np.ndarray
    defaulted: np.ndarray

    @staticmethod
    def of(parts: Sequence[Outcomes]) -> Outcomes:
        seq = np.concatenate([p.seq for p in parts]) if parts else np.array([], dtype=np.int64)
        defaulted = np.concatenate([p.defaulted for p in parts]) if parts else np.array([], dtype=bool)
        seq, first = np.unique(seq, return_index=True)  # an outcome read twice is the same outcome
        return Outcomes(seq, defaulted[first])


def read_rows(
    connection: sa.Connection,
    model_version: str,
    *,
    since: datetime | None,
    until: datetime | None,
    which: sa.ColumnElement[bool] | None = None,
    reference: Mapping[str, Any] | None = None,
    schema: Schema | None = None,
    chunk: int = CHUNK,
) -> Rows:
    """One model's decisions in ``[since, until)`` (those of them ``which`` selects), a chunk at a
    time, in ``seq`` order.

    With a reference (and the bundle's schema) each stored application is parsed once (orjson, on
    the text the database holds: no copy through SQLAlchemy's JSON type) and its values binned
    under the schema's field names; without one the applications are not read.
    """
    counting = reference is not None and schema is not None
    columns: list[sa.ColumnElement[Any]] = [
        decisions.c.seq,
        decisions.c.created_at,  # SQLite's text or PostgreSQL's aware datetime, as the driver gives it
        decisions.c.probability,
        decisions.c.decision,
        decisions.c.target,
    ]
    if counting:
        # the stored JSON as text, for orjson: PostgreSQL's driver would parse it into dicts for us
        columns.append(sa.cast(decisions.c.input, sa.Text).label("input"))
    query = sa.select(*columns).where(decisions.c.model_version == model_version).order_by(decisions.c.seq)
    if which is not None:
        query = query.where(which)
    statement = filtered(query, since=since, until=until)
    names = list(reference["inputs"]) if counting and reference is not None else []
    parts: list[Rows] = []
    spellings: dict[str, str | None] = {}
    code = {name: i for i, name in enumerate(DECISIONS)}
    with _driver_rows(connection, statement, chunk) as chunks:
        for rows in chunks:
            columns_of = list(zip(*rows, strict=True))
            n = len(rows)
            # a decision stored before the decision column: approve or decline by its target
            decided = columns_of[3]
            if None in decided:
                decided = tuple(
                    d or (DECLINE if t == BAD_RISK else APPROVE)
                    for d, t in zip(decided, columns_of[4], strict=True)
                )
            bins: dict[str, np.ndarray] = {}
            if counting:
                assert reference is not None and schema is not None
                bins = bin_inputs(reference, schema, spellings, columns_of[5])
            parts.append(
                Rows(
                    seq=np.fromiter(columns_of[0], np.int64, n),
                    moment=utc_microseconds(columns_of[1]),
                    probability=np.array(columns_of[2], dtype=np.float64),
                    # map with C functions: no Python frame per row
                    decision=np.fromiter(map(code.get, decided, repeat(len(DECISIONS))), np.int8, n),
                    bins=bins,
                )
            )
    return Rows.of(parts, names)


def read_seqs(
    connection: sa.Connection,
    model_version: str,
    *,
    since: datetime | None,
    until: datetime | None,
    after: int,
    up_to: int,
) -> np.ndarray:
    """The ``seq`` of one model's decisions in ``[since, until)`` within ``(after, up_to]``: which
    are there now, without their applications."""
    query = sa.select(decisions.c.seq).where(
        decisions.c.model_version == model_version, decisions.c.seq > after, decisions.c.seq <= up_to
    )
    found = connection.execute(filtered(query, since=since, until=until)).scalars().all()
    return np.sort(np.fromiter(found, np.int64, len(found)))


def read_outcomes(
    connection: sa.Connection,
    model_version: str,
    *,
    since: datetime | None,
    until: datetime | None,
    recorded_from: datetime | None,
    chunk: int = CHUNK,
) -> tuple[Outcomes, int | None]:
    """The outcomes of one model's decisions, and the newest ``recorded_at`` among them (µs).

    Without ``recorded_from``: those of the decisions in ``[since, until)``. With it: those
    recorded from then on, whatever their decision's time (the few since the last read), walked
    from the outcomes table: SQLite, without statistics, would rather walk the model's decisions
    by its index when the query filters them (every decision of the window), so the model is
    checked here.
    """
    query = sa.select(
        decisions.c.seq, decisions.c.model_version, outcomes.c.outcome, outcomes.c.recorded_at
    ).select_from(outcomes.join(decisions, decisions.c.id == outcomes.c.decision_id))
    if recorded_from is None:
        query = filtered(query.where(decisions.c.model_version == model_version), since=since, until=until)
    else:
        query = query.where(outcomes.c.recorded_at >= as_utc(recorded_from))
    seq: list[np.ndarray] = []
    defaulted: list[np.ndarray] = []
    newest: int | None = None
    with _driver_rows(connection, query, chunk) as chunks:
        for rows in chunks:
            columns_of = list(zip(*rows, strict=True))
            n = len(rows)
            mine = np.fromiter(map(eq, columns_of[1], repeat(model_version)), bool, n)
            seq.append(np.fromiter(columns_of[0], np.int64, n)[mine])
            defaulted.append(np.fromiter(map(eq, columns_of[2], repeat("defaulted")), bool, n)[mine])
            latest = int(utc_microseconds(columns_of[3]).max())
            newest = latest if newest is None else max(newest, latest)
    parts = [Outcomes(s, d) for s, d in zip(seq, defaulted, strict=True)]
    return Outcomes.of(parts), newest


@contextlib.contextmanager
def snapshot(store: DecisionStore) -> Iterator[sa.Connection]:
    """A connection whose reads all see the store as it was at one moment: a refresh reads the
    outcomes and the decisions in two statements, and an outcome must not arrive between them
    without its decision (or the other way round)."""
    with store.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")  # the driver begins only before writes; rolled back on close
            yield connection
        else:
            yield connection.execution_options(isolation_level="REPEATABLE READ")


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
    # an IN list's values as parameters of their own: the driver gets the SQL as it will run
    compiled = statement.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    driver = connection.connection.dbapi_connection
    assert driver is not None
    named = driver.cursor(name="preauth_monitoring")
    try:
        named.execute(str(compiled), compiled.params)
        yield iter(lambda: named.fetchmany(chunk), [])
    finally:
        named.close()


def utc_microseconds(moments: Sequence[Any]) -> np.ndarray:
    """Stored times as microseconds since the epoch: SQLite's text (UTC, ``YYYY-MM-DD
    HH:MM:SS.ffffff``) or PostgreSQL's aware datetimes (in the session's zone)."""
    if all(type(m) is str for m in moments):
        return np.array(moments, dtype="datetime64[us]").astype(np.int64)
    try:  # an exact division of aware times, with C functions
        micros = map(floordiv, map(sub, moments, repeat(EPOCH)), repeat(MICROSECOND))
        return np.fromiter(micros, np.int64, len(moments))
    except TypeError:  # a time without a zone: UTC, as everywhere in the store
        return np.fromiter(((as_utc(m) - EPOCH) // MICROSECOND for m in moments), np.int64, len(moments))


def bin_inputs(
    reference: Mapping[str, Any], schema: Schema, names: dict[str, str | None], texts: Sequence[str]
) -> dict[str, np.ndarray]:
    """Bin one chunk of stored applications (JSON text, kept as given under any alias): per model
    input of the reference, the bin of each application's value, found by the schema's field names."""
    given: list[dict[str, Any]] = list(map(orjson.loads, texts))
    if None in given:  # a JSON null stored as the application: nothing given
        given = [application or {} for application in given]
    # the keys of an application in order, numbered: a few shapes cover a whole chunk
    shapes: dict[tuple[str, ...], int] = {}
    shape = [shapes.setdefault(keys, len(shapes)) for keys in map(tuple, given)]
    for key in {key for keys in shapes for key in keys} - names.keys():
        names[key] = schema.canonical_column(str(key))
    bins: dict[str, np.ndarray] = {}
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
        found = live_bins(ref, canonical_column_values(values, name, schema))
        bins[name] = found.astype(np.uint8 if bin_count(ref) <= 256 else np.int32)
    return bins
