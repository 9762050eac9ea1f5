"""Human review of referred decisions: a person approves or declines what the model would not decide.

A decision the model referred (:mod:`preauth.referral`: outside the training range, or too close
to the threshold) waits in the review queue (:func:`queue`, oldest first) until a reviewer
approves or declines it with a reason. The review is kept beside the decision in the decision
store (table ``reviews``, migration 0005), with who made it (the API key's name) and when; the
model's decision in ``decisions`` is never changed, and a review is never replaced: a second review
of the same decision is refused (:class:`Reviewed` ``conflict``), even when two reviewers race.
Only referred decisions are reviewed: an approve or decline the model made alone is not in the
queue, and a review of one is refused (the model's clear decisions are audited through outcomes).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from .decisions import REFER, Decision
from .errors import InputError
from .store import MAX_PAGE, DecisionStore, decisions, decode_cursor, encode_cursor, metadata

REVIEW_DECISIONS: tuple[str, ...] = ("approve", "decline")
MAX_REASON = 2000
"""The longest reason kept, in characters: a paragraph, not a file."""
MAX_REVIEWER = 64
ANONYMOUS = "anonymous"
"""The reviewer of a review made through an open API (no ``PREAUTH_API_KEYS``) that names no one."""

reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("decision_id", sa.String(36), sa.ForeignKey("decisions.id"), primary_key=True),
    sa.Column("reviewer", sa.String(MAX_REVIEWER), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_reviews_created_at", "created_at"),
)


@dataclass(frozen=True)
class Review:
    """A person's decision on one referred application, who made it, when and why."""

    decision_id: str
    reviewer: str
    decision: str
    reason: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "reviewer": self.reviewer,
            "decision": self.decision,
            "reason": self.reason,
            "reviewed_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Review:
        moment = row["created_at"]
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return cls(row["decision_id"], row["reviewer"], row["decision"], row["reason"], moment)


@dataclass(frozen=True)
class Reviewed:
    """The store's answer: ``created``; ``conflict`` (already reviewed: ``stored`` is that review);
    ``unknown`` (no such decision); ``not_referred`` (``model_decision`` says what the model decided)."""

    status: Literal["created", "conflict", "unknown", "not_referred"]
    review: Review | None = None
    stored: Review | None = None
    model_decision: str | None = None


def _visible(char: str) -> bool:
    """A character a reader sees: not a space, a control or an invisible format mark (zero width)."""
    return unicodedata.category(char)[0] not in "CZ"


def _control(char: str) -> bool:
    """A control character other than a line break or a tab: NUL, a bell, a terminal's escape.

    A reason is read on the page, in a CSV export and in a terminal; an escape sequence in it would
    restyle or rewrite what the next reader sees of the audit trail."""
    return unicodedata.category(char) == "Cc" and char not in "\n\r\t"


def parse_review(body: Any, *, source: str) -> tuple[str, str, str | None]:
    """``(decision, reason, reviewer or None)`` from a review body: the one check for every caller."""
    if not isinstance(body, Mapping):
        raise InputError('expected {"decision": "approve" | "decline", "reason": "..."}', source=source)
    value = body.get("decision")
    verdict = value.strip().lower() if isinstance(value, str) else ""
    if verdict not in REVIEW_DECISIONS:
        shown = "" if value is None else str(value)[:40]
        raise InputError(
            f"'{shown}' is not one of: {', '.join(REVIEW_DECISIONS)}", source=source, column="decision"
        )
    reason = body.get("reason")
    if not isinstance(reason, str) or not any(_visible(c) for c in reason):
        raise InputError("a review needs a reason (text saying why)", source=source, column="reason")
    if len(reason) > MAX_REASON or any(_control(c) for c in reason):
        raise InputError(
            f"must be text of at most {MAX_REASON} characters, without control characters but line breaks",
            source=source,
            column="reason",
        )
    reviewer = body.get("reviewer")
    if reviewer is not None and (
        not isinstance(reviewer, str)
        or not reviewer.strip()
        or len(reviewer) > MAX_REVIEWER
        or not reviewer.isprintable()
    ):
        raise InputError(
            f"must be a name of 1 to {MAX_REVIEWER} printable characters", source=source, column="reviewer"
        )
    return verdict, reason.strip(), reviewer.strip() if isinstance(reviewer, str) else None


def record_review(
    store: DecisionStore, decision_id: str, *, reviewer: str, decision: str, reason: str
) -> Reviewed:
    """Keep one review, in one transaction; see :class:`Reviewed` for what can come back.

    The insert is ``ON CONFLICT DO NOTHING`` on the decision id: of two racing reviews exactly one
    is stored, and the other is told which.
    """
    now = datetime.now(UTC)
    review = Review(decision_id, reviewer, decision, reason, now)
    with store.engine.begin() as connection:
        found = (
            connection.execute(
                sa.select(decisions.c.decision, decisions.c.is_fraud).where(decisions.c.id == decision_id)
            )
            .mappings()
            .first()
        )
        if found is None:
            return Reviewed("unknown", review)
        model = found["decision"] or ("decline" if found["is_fraud"] else "approve")
        if model != REFER:
            return Reviewed("not_referred", review, model_decision=model)
        row = {
            "decision_id": decision_id,
            "reviewer": reviewer,
            "decision": decision,
            "reason": reason,
            "created_at": now,
        }
        if connection.execute(_insert_ignoring_conflicts(store), row).first() is not None:
            return Reviewed("created", review)
        return Reviewed("conflict", review, stored=_stored(connection, decision_id))


def review_of(store: DecisionStore, decision_id: str) -> Review | None:
    with store.engine.connect() as connection:
        return _stored(connection, decision_id)


def _stored(connection: sa.Connection, decision_id: str) -> Review | None:
    row = (
        connection.execute(sa.select(reviews).where(reviews.c.decision_id == decision_id)).mappings().first()
    )
    return None if row is None else Review.from_row(row)


def _insert_ignoring_conflicts(store: DecisionStore) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    dialect: Any = sqlite if store.engine.dialect.name == "sqlite" else postgresql
    insert = dialect.insert(reviews).on_conflict_do_nothing(index_elements=["decision_id"])
    return insert.returning(reviews.c.decision_id)


@dataclass(frozen=True)
class QueueItem:
    decision: Decision
    review: Review | None

    def api(self) -> dict[str, Any]:
        return {**self.decision.api(), "review": None if self.review is None else self.review.as_dict()}


@dataclass(frozen=True)
class QueuePage:
    """Referred decisions, oldest first, and the cursor of the next page (None at the end)."""

    items: list[QueueItem]
    next_cursor: str | None


def queue(
    store: DecisionStore,
    *,
    state: Literal["pending", "done"] = "pending",
    limit: int = 50,
    cursor: str | None = None,
) -> QueuePage:
    """Referred decisions without a review (``pending``) or with one (``done``), oldest first."""
    limit = max(1, min(int(limit), MAX_PAGE))
    query = (
        sa.select(decisions, *(c.label(f"review_{c.name}") for c in reviews.columns))
        .outerjoin(reviews, reviews.c.decision_id == decisions.c.id)
        .where(decisions.c.decision == REFER)
        .where(reviews.c.decision_id.is_(None) if state == "pending" else reviews.c.decision_id.is_not(None))
        .order_by(decisions.c.seq)
        .limit(limit + 1)
    )
    if cursor:
        query = query.where(decisions.c.seq > decode_cursor(cursor))
    with store.engine.connect() as connection:
        rows = list(connection.execute(query).mappings())
    more = len(rows) > limit
    rows = rows[:limit]
    items = [QueueItem(Decision.from_row(row), _review_in(row)) for row in rows]
    return QueuePage(items, encode_cursor(int(rows[-1]["seq"])) if more and rows else None)


def _review_in(row: Mapping[Any, Any]) -> Review | None:
    """The review columns of a decision row joined with its review (``review_<column>``), if any."""
    if row.get("review_decision_id") is None:
        return None
    return Review.from_row({c.name: row[f"review_{c.name}"] for c in reviews.columns})
