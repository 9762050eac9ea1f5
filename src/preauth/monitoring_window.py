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

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa

from .applications import Schema
from .drift import bin_count
from .evaluation import auc_interval
from .monitoring_reads import (
    EPOCH,
    MICROSECOND,
    Outcomes,
    Rows,
    read_outcomes,
    read_rows,
    read_seqs,
    snapshot,
)
from .store import DecisionStore, as_utc, decisions

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
    _interval: tuple[bytes, list[float] | None] | None = field(default=None, init=False, repr=False)
    """The last live AUC interval and a digest of the outcomes and scores it was drawn from."""

    def auc_interval(self, y: np.ndarray, p: np.ndarray, *, resamples: int, seed: int) -> list[float] | None:
        """:func:`.evaluation.auc_interval`, drawn again only when the outcomes or scores changed.

        The bootstrap is most of a refresh in which nothing new arrived (0.55 of 0.64 s over
        200,000 outcomes); its resamples are seeded, so the same rows give the same interval."""
        digest = hashlib.blake2b(digest_size=16)
        for part in (np.int64(resamples), np.int64(seed), np.ascontiguousarray(y), np.ascontiguousarray(p)):
            digest.update(part.tobytes())
        key = digest.digest()
        if self._interval is None or self._interval[0] != key:
            self._interval = (key, auc_interval(y, p, resamples=resamples, seed=seed))
        return self._interval[1]

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
