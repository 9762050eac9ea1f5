"""Real outcomes of decided applications: whether the loan was repaid, and when that became known.

The original pipeline labelled with an LLM because it had no outcomes; a lender gets them months
after the decision. An outcome is kept beside its decision in the decision store (table
``outcomes``, one row per decision, never overwritten): recording the same outcome again is a
no-op, recording a different one is refused. Outcomes come one at a time through the API
(``POST /v1/decisions/{id}/outcome``) or as a file (``preauth outcomes import``), and go back out as
a labels file of real outcomes that ``preauth train`` learns from (``train --from-store``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from .applications import ID_COLUMN, Reject, Schema
from .errors import InputError
from .store import DecisionStore, as_utc, could_be_stored_id, decisions, filtered, metadata

if TYPE_CHECKING:
    import pandas as pd

OutcomeValue = Literal["repaid", "defaulted"]
OUTCOMES: tuple[str, ...] = ("repaid", "defaulted")

outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("decision_id", sa.String(36), sa.ForeignKey("decisions.id"), primary_key=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("known_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Index("ix_outcomes_outcome", "outcome"),
)


@dataclass(frozen=True)
class Outcome:
    """What happened to one decided application."""

    decision_id: str
    outcome: str
    known_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "outcome": self.outcome,
            "known_at": self.known_at.isoformat(),
        }


@dataclass(frozen=True)
class Recorded:
    """The store's answer for one outcome: ``created``, ``unchanged`` (already known, the same),
    ``conflict`` (a different outcome is known: never overwritten), ``unknown`` (no such
    decision) or ``before`` (dated before the day the decision was made: a typo'd year, or the
    outcome of another loan, which would teach the model and the live AUC a false pairing)."""

    status: Literal["created", "unchanged", "conflict", "unknown", "before"]
    outcome: Outcome
    stored: Outcome | None = None
    decided_at: datetime | None = None

    def too_early(self) -> str:
        """Why an outcome dated before its decision is refused (for ``before``)."""
        assert self.decided_at is not None
        return (
            f"{self.outcome.known_at.date().isoformat()} is before the decision was made "
            f"({self.decided_at.date().isoformat()}): an outcome is known after its decision"
        )

    def conflict(self) -> tuple[str, str]:
        """The field of a conflicting outcome that differs from the stored one, and why it is
        refused: the same outcome with another date is a conflict too, and said so (it used to
        read "already has the outcome 'repaid'" for a row saying repaid)."""
        assert self.stored is not None
        if self.stored.outcome != self.outcome.outcome:
            known = self.stored.known_at.date().isoformat()
            return "outcome", (
                f"the decision already has the outcome '{self.stored.outcome}' (known {known}); "
                "outcomes are never overwritten"
            )
        return "known_at", (
            f"the decision's outcome '{self.stored.outcome}' is already recorded as known "
            f"{self.stored.known_at.isoformat()}, not {self.outcome.known_at.isoformat()}; "
            "outcomes are never overwritten"
        )


def parse_outcome(value: Any, known_at: Any, decision_id: Any, *, source: str, row: int | None) -> Outcome:
    """One outcome checked: the one value check for the API and for files."""
    ident = "" if decision_id is None else str(decision_id).strip()
    if not ident or len(ident) > 36:
        raise InputError("needs the id of a stored decision", source=source, row=row, column="decision_id")
    text = "" if value is None else str(value).strip().lower()
    if text not in OUTCOMES:
        shown = "" if value is None else str(value)[:40]
        raise InputError(
            f"'{shown}' is not one of: {', '.join(OUTCOMES)}", source=source, row=row, column="outcome"
        )
    return Outcome(ident, text, parse_moment(known_at, source=source, row=row))


def parse_moment(value: Any, *, source: str, row: int | None) -> datetime:
    """A date (``2026-10-01``) or an ISO 8601 time; a date means midnight UTC; not in the future."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        text = "" if value is None else str(value).strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            shown = text[:40]
            raise InputError(
                f"'{shown}' is not a date (YYYY-MM-DD) or an ISO 8601 time",
                source=source,
                row=row,
                column="known_at",
            ) from None
    try:
        moment = as_utc(moment)
    except ValueError as error:
        raise InputError(str(error), source=source, row=row, column="known_at") from None
    if moment > datetime.now(UTC):
        raise InputError("is in the future", source=source, row=row, column="known_at")
    return moment


def record(store: DecisionStore, items: Sequence[Outcome], *, source: str) -> list[Recorded]:
    """Keep outcomes in one transaction; per outcome, what happened (see :class:`Recorded`).

    Concurrent writers of the same decision's outcome are safe: the insert is ``ON CONFLICT DO
    NOTHING`` on the decision id, and whoever loses reads what the winner stored.
    """
    if not items:
        return []
    ids = [i for i in {item.decision_id for item in items} if could_be_stored_id(i)]
    now = datetime.now(UTC)
    insert = _insert_ignoring_conflicts(store).returning(outcomes.c.decision_id)
    answers: list[Recorded] = []
    with store.engine.begin() as connection:
        query = sa.select(decisions.c.id, decisions.c.created_at).where(decisions.c.id.in_(ids))
        decided = {row.id: row.created_at for row in connection.execute(query)}
        for item in items:
            if item.decision_id not in decided:
                answers.append(Recorded("unknown", item))
                continue
            made = as_utc(decided[item.decision_id])
            # Compared by day: a date means midnight, and an outcome known the day a loan was
            # decided is possible (a cancellation), so only an earlier day is refused.
            if item.known_at.date() < made.date():
                answers.append(Recorded("before", item, decided_at=made))
                continue
            row = {**item.as_dict(), "known_at": item.known_at, "recorded_at": now, "source": source}
            if connection.execute(insert, row).first() is not None:
                answers.append(Recorded("created", item))
                continue
            stored = _stored(connection, item.decision_id)
            same = stored is not None and (stored.outcome, stored.known_at) == (item.outcome, item.known_at)
            answers.append(Recorded("unchanged" if same else "conflict", item, stored))
    return answers


def outcome_of(store: DecisionStore, decision_id: str) -> Outcome | None:
    with store.engine.connect() as connection:
        return _stored(connection, decision_id)


def _stored(connection: sa.Connection, decision_id: str) -> Outcome | None:
    row = (
        connection.execute(sa.select(outcomes).where(outcomes.c.decision_id == decision_id))
        .mappings()
        .first()
    )
    if row is None:
        return None
    known = row["known_at"]
    known = known.replace(tzinfo=UTC) if known.tzinfo is None else known.astimezone(UTC)
    return Outcome(row["decision_id"], row["outcome"], known)


def _insert_ignoring_conflicts(store: DecisionStore) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    dialect: Any = sqlite if store.engine.dialect.name == "sqlite" else postgresql
    return dialect.insert(outcomes).on_conflict_do_nothing(index_elements=["decision_id"])


def decided_with_outcomes(store: DecisionStore, *, since: datetime | None = None) -> Iterable[dict[str, Any]]:
    """Stored decisions that have an outcome: their application as given, the outcome, the decision."""
    query = (
        sa.select(
            decisions.c.id,
            decisions.c.input,
            decisions.c.created_at,
            decisions.c.model_version,
            decisions.c.probability,
            outcomes.c.outcome,
        )
        .join(outcomes, outcomes.c.decision_id == decisions.c.id)
        .order_by(decisions.c.seq)
    )
    with store.engine.connect() as connection:
        yield from (dict(row) for row in connection.execute(filtered(query, since=since)).mappings())


@dataclass
class Imported:
    """What ``preauth outcomes import`` did with a file."""

    created: int
    unchanged: int
    rejects: list[Reject]
    source: str

    def reject_messages(self) -> list[str]:
        return [r.message(self.source) for r in self.rejects]


_COLUMNS = {
    "decision_id": ("decision_id", "decision", "id"),
    "outcome": ("outcome", "result", "status"),
    "known_at": ("known_at", "known", "date", "outcome_date"),
}


def import_file(store: DecisionStore, path: Path) -> Imported:
    """Record every good row of an outcomes file (CSV, Parquet or JSON: ``decision_id``, ``outcome``,
    ``known_at``); a bad row, an unknown decision or a conflicting outcome is a rejected row."""
    from .applications import MALFORMED_ROWS, normalize_name, read_table

    source = str(path)
    table = read_table(path)
    names = {normalize_name(str(c)): str(c) for c in table.columns}
    found: dict[str, str] = {}
    for wanted, spellings in _COLUMNS.items():
        column = next((names[s] for s in spellings if s in names), None)
        if column is None:
            raise InputError(f"missing required column '{wanted}'", source=source)
        found[wanted] = column
    if not len(table):
        raise InputError("no outcomes (header only)", source=source)  # as predict says of applications
    # A row the reader could not split into fields (or a JSON element that is not an object) keeps
    # its place as a blank row: refused for what it is, not for the decision id it seems to lack.
    malformed: dict[int, tuple[str, str]] = table.attrs.get(MALFORMED_ROWS, {})
    rejects = [Reject(row, None, text, reason) for row, (text, reason) in malformed.items()]
    good: list[tuple[int, Outcome]] = []
    cells = zip(*(table[found[c]].tolist() for c in ("decision_id", "outcome", "known_at")), strict=True)
    for row, (decision_id, value, known_at) in enumerate(cells, start=1):
        if row in malformed:
            continue
        try:
            good.append((row, parse_outcome(value, known_at, decision_id, source=source, row=row)))
        except InputError as error:
            rejects.append(
                Reject(row, error.column, _cell(error, decision_id, value, known_at), error.message)
            )
    answers = record(store, [outcome for _, outcome in good], source="import")
    created = unchanged = 0
    for (row, outcome), done in zip(good, answers, strict=True):
        if done.status == "created":
            created += 1
        elif done.status == "unchanged":
            unchanged += 1
        elif done.status == "unknown":
            rejects.append(Reject(row, "decision_id", outcome.decision_id, "no stored decision has this id"))
        elif done.status == "before":
            rejects.append(Reject(row, "known_at", outcome.known_at.isoformat(), done.too_early()))
        else:
            field, reason = done.conflict()
            value = outcome.outcome if field == "outcome" else outcome.known_at.isoformat()
            rejects.append(Reject(row, field, value, reason))
    rejects.sort(key=lambda r: r.row)
    return Imported(created, unchanged, rejects, source)


def _cell(error: InputError, decision_id: Any, value: Any, known_at: Any) -> str:
    given = {"decision_id": decision_id, "outcome": value, "known_at": known_at}.get(error.column or "")
    return "" if given is None else str(given)[:200]


def labels_from_store(store: DecisionStore, schema: Schema, *, since: datetime | None = None) -> pd.DataFrame:
    """A labels file of real outcomes: every stored decision that has one, its application under
    the schema's column names and its outcome in the schema's target column (defaulted → bad).

    This is how the lifecycle closes: rules or LLM labels → a served model → outcomes → a model
    trained on what applicants really did (``preauth train --from-store``).
    """
    import pandas as pd

    if schema.target is None:
        raise InputError(f"the schema '{schema.name}' has no target column to hold the outcomes")
    bad, good = schema.target.bad[0], schema.target.good[0]
    rows: list[dict[str, Any]] = []
    for decided in decided_with_outcomes(store, since=since):
        row: dict[str, Any] = {ID_COLUMN: decided["id"]}
        for key, value in (decided["input"] or {}).items():
            name = schema.canonical_column(str(key))
            if name is not None:
                row[name] = value
        row[schema.target.column] = bad if decided["outcome"] == "defaulted" else good
        rows.append(row)
    if not rows:
        when = f" since {since.isoformat()}" if since is not None else ""
        raise InputError(f"no stored decision{when} has an outcome yet (see `preauth outcomes import`)")
    columns = [ID_COLUMN, *(f for f in schema.field_names if any(f in r for r in rows)), schema.target.column]
    return pd.DataFrame(rows, columns=columns)
