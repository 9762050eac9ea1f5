"""The decisions of a monitoring window, read from the store once and kept for the next refresh.

:func:`preauth.monitoring.monitor` needs, per decision in the window, its day, score, decision and
outcome, and per model input the bin of the reference its value falls in. Reading those means
parsing every stored application, seconds for a week of decisions; the service refreshes its
gauges every minute. A :class:`WindowCache` keeps what it has read and, on the next refresh, reads
only:

* the decisions stored since (``seq`` above its mark: the primary key, an index range), parsing
  only their applications;
* the outcomes recorded since (``recorded_at`` at or after its mark, less :data:`GRACE`: the
  narrow outcomes table and no application), since an outcome arrives months after its decision.

Its report is exactly the full read's: the arrays are put in the same order (decision time, then
``seq``), the bins are counted from the same values, and a window that slides (``since`` moving
forward) drops the decisions that left it. Settled only what every later read would also see:

* a decision is settled when no transaction that could still commit holds a smaller ``seq``. On
  SQLite writers take turns (one write lock for the database), so a ``seq`` is visible only after
  every smaller one: settled at once. PostgreSQL's transactions commit in any order, so a read's
  mark is trusted only once :data:`GRACE` has passed since; until then each refresh lists the
  ``seq`` of the decisions above the last trusted mark (no application) and reads those it has not
  seen (a transaction that took its ``seq`` first and committed last);
* an outcome's ``recorded_at`` is stamped before its transaction commits, so outcomes recorded up
  to :data:`GRACE` before the newest one seen are read again (outcomes are never changed or
  removed: reading one twice is harmless).

A transaction longer than :data:`GRACE` could be missed: every :data:`REBUILD` the cache starts
again with a full read, so nothing stays missed longer than that. One-shot readers (the CLI, the
API) use a fresh cache: the full read is the same code.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
MICROSECONDS_A_DAY = 86_400_000_000
GRACE = timedelta(minutes=2)
"""Longer than any write transaction of the store (SQLite's busy timeout, 30 s, included): what a
read could not yet see has committed by then."""
REBUILD = timedelta(hours=1)
"""A cache older than this reads its window again in full."""


@dataclass(frozen=True)
class Decided:
    """The window's decisions as the report reads them, one array per column, in the order of
    their decision time (then ``seq``); their inputs already counted.

    Only counts of the inputs are kept (per model input, how many fell in each bin of its
    reference): drift needs nothing else.
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


def decided_in(
    rows: Rows,
    known: Outcomes,
    *,
    since: datetime | None,
    until: datetime | None,
    reference: Mapping[str, Any] | None,
) -> Decided:
    """The report's arrays: the rows inside ``[since, until)`` by decision time (then ``seq``, as
    the rows come), their outcomes, their inputs counted."""
    inside = np.ones(len(rows.seq), dtype=bool)
    if since is not None:
        inside &= rows.moment >= (as_utc(since) - EPOCH) // MICROSECOND
    if until is not None:
        inside &= rows.moment < (as_utc(until) - EPOCH) // MICROSECOND
    where = np.flatnonzero(inside)
    order = where[np.argsort(rows.moment[where], kind="stable")]
    has = np.zeros(len(rows.seq), dtype=bool)
    defaulted = np.zeros(len(rows.seq), dtype=bool)
    at = np.searchsorted(rows.seq, known.seq)
    found = at < len(rows.seq)
    found[found] = rows.seq[at[found]] == known.seq[found]
    has[at[found]] = True
    defaulted[at[found]] = known.defaulted[found]
    counts = {}
    if reference is not None:
        counts = {
            name: np.bincount(rows.bins[name][where], minlength=bin_count(ref)).astype(np.float64)
            for name, ref in reference["inputs"].items()
            if name in rows.bins
        }
    return Decided(
        day=(rows.moment[order] // MICROSECONDS_A_DAY).astype("datetime64[D]"),
        probability=rows.probability[order],
        decision=rows.decision[order],
        known=has[order],
        defaulted=defaulted[order],
        input_counts=counts,
    )


@dataclass
class WindowCache:
    """What a repeated refresh of one model's window has read, kept until the next one.

    Owned by whoever refreshes repeatedly (the service's gauges); one cache follows one model and
    window: another model, an earlier ``since`` or another ``until`` starts it again.
    """

    grace: timedelta | None = None
    """How long until a read's mark is trusted: None for the store's own (0 on SQLite, whose writers
    take turns; :data:`GRACE` on PostgreSQL)."""
    rebuild: timedelta = REBUILD
    clock: Callable[[], float] = time.monotonic
    rows_read: int = field(default=0, init=False)
    """Decisions the last refresh read from the store (and whose applications it parsed)."""
    outcomes_read: int = field(default=0, init=False)
    """Outcomes the last refresh read from the store."""
    _key: tuple[Any, ...] | None = field(default=None, init=False, repr=False)
    _since: datetime | None = field(default=None, init=False, repr=False)
    _started: float = field(default=0.0, init=False, repr=False)
    _settled: Rows | None = field(default=None, init=False, repr=False)
    _settled_seq: int = field(default=0, init=False, repr=False)
    """Every decision up to this ``seq`` (in the window) is in ``_settled``."""
    _tail: Rows | None = field(default=None, init=False, repr=False)
    """The decisions read above ``_settled_seq``: others may still commit among them."""
    _seen: int = field(default=0, init=False, repr=False)
    """The largest ``seq`` read."""
    _marks: list[tuple[float, int]] = field(default_factory=list, init=False, repr=False)
    """When a read happened and the largest ``seq`` it saw: trusted once the grace has passed."""
    _known: Outcomes = field(default_factory=lambda: Outcomes.of([]), init=False, repr=False)
    _recorded: int | None = field(default=None, init=False, repr=False)
    """The newest ``recorded_at`` read (µs): the next read starts :data:`GRACE` before it."""

    def read(
        self,
        store: DecisionStore,
        model_version: str,
        *,
        since: datetime | None,
        until: datetime | None,
        reference: Mapping[str, Any] | None,
        schema: Schema | None,
    ) -> Decided:
        """The window's arrays, as a full read would give them, reading only what is new."""
        now = self.clock()
        names = list(reference["inputs"]) if reference is not None and schema is not None else []
        key = (store.url, model_version, until, reference, schema)
        stale = self._settled is None or now - self._started > self.rebuild.total_seconds()
        earlier = self._since is not None and (since is None or since < self._since)
        if stale or earlier or key != self._key:
            self._start(key, now, names)
        assert self._settled is not None and self._tail is not None
        self._since = since
        recorded_from = None
        if self._recorded is not None:
            recorded_from = EPOCH + (self._recorded * MICROSECOND) - GRACE
        with snapshot(store) as connection:
            found, newest = read_outcomes(
                connection, model_version, since=since, until=until, recorded_from=recorded_from
            )

            def rows(which: sa.ColumnElement[bool] | None) -> Rows:
                return read_rows(
                    connection,
                    model_version,
                    since=since,
                    until=until,
                    which=which,
                    reference=reference,
                    schema=schema,
                )

            new = rows(decisions.c.seq > self._seen if self._seen else None)
            late: list[Rows] = []
            if self._seen > self._settled_seq:  # what committed since in the range not yet trusted
                there = read_seqs(
                    connection,
                    model_version,
                    since=since,
                    until=until,
                    after=self._settled_seq,
                    up_to=self._seen,
                )
                missing = np.setdiff1d(there, self._tail.seq).tolist()
                late = [
                    rows(decisions.c.seq.in_(missing[i : i + 1000])) for i in range(0, len(missing), 1000)
                ]
        self._known = Outcomes.of([self._known, found])
        if newest is not None:
            self._recorded = newest if self._recorded is None else max(self._recorded, newest)
        self.rows_read = len(new.seq) + sum(len(part.seq) for part in late)
        self.outcomes_read = len(found.seq)
        tail = Rows.of([self._tail, *late, new], names)
        if late:  # back in seq order
            tail = tail.take(np.argsort(tail.seq, kind="stable"))
        if len(new.seq):
            self._seen = int(new.seq[-1])
        decided = decided_in(
            Rows.of([self._settled, tail], names), self._known, since=since, until=until, reference=reference
        )
        self._settle(store, now, tail, names, since)
        return decided

    def _start(self, key: tuple[Any, ...], now: float, names: Sequence[str]) -> None:
        self._key, self._started = key, now
        self._settled, self._settled_seq = Rows.of([], names), 0
        self._tail, self._seen = Rows.of([], names), 0
        self._marks = []
        self._known, self._recorded = Outcomes.of([]), None

    def _settle(
        self, store: DecisionStore, now: float, tail: Rows, names: Sequence[str], since: datetime | None
    ) -> None:
        """Move to the settled rows those no later read could add to: up to the newest mark at
        least the grace old. The others stay in the tail, checked again by the next read."""
        assert self._settled is not None
        grace = self.grace
        if grace is None:
            grace = timedelta(0) if store.engine.dialect.name == "sqlite" else GRACE
        self._marks.append((now, self._seen))
        trusted = [m for when, m in self._marks if when <= now - grace.total_seconds()]
        self._marks = [(when, m) for when, m in self._marks if when > now - grace.total_seconds()]
        up_to = max([self._settled_seq, *trusted])
        settled = Rows.of([self._settled, tail.take(tail.seq <= up_to)], names)
        self._tail = tail.take(tail.seq > up_to)
        if since is not None:  # the window slid: forget the decisions that left it, now and then
            inside = settled.moment >= (as_utc(since) - EPOCH) // MICROSECOND
            if np.count_nonzero(~inside) > len(inside) // 8:
                settled = settled.take(inside)
                keep = (self._known.seq > up_to) | np.isin(self._known.seq, settled.seq)
                self._known = Outcomes(self._known.seq[keep], self._known.defaulted[keep])
        self._settled, self._settled_seq = settled, up_to
