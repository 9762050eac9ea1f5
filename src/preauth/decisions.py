"""A decision on one application, and every shape it is shown or kept in, made here and only here.

The service decides (:mod:`preauth.service.serving`), stores and reads back
(:mod:`preauth.store`), answers the JSON API, ``/invocations`` and the page; the batch scorer
writes the original pipeline's result objects. Each of those used to build its own dict, kept equal
by tests. Now a decision is one frozen :class:`Decision`, and its shapes are its methods:

* :meth:`Decision.api`: the ``/v1/decisions`` answer;
* :meth:`Decision.result_object`: the original pipeline's result object (the ``/invocations``
  answer; batch files use :func:`result_object` and :data:`RESULT_KEYS` for the same keys);
* :meth:`Decision.row` / :meth:`Decision.row_values` and :meth:`Decision.from_row`: the stored row
  and back;
* :meth:`Decision.csv_cells` / :meth:`Decision.summary`: the page's results file and list;
* :meth:`Decision.detail`: ``GET /v1/decisions/{id}``, the answer with its review and outcome;
* :meth:`Decision.export_values` and :data:`EXPORT_COLUMNS`: a row of the decisions export
  (CSV or Parquet, :mod:`preauth.exports`), with the review and the outcome.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

BAD_RISK = "bad risk"
GOOD_RISK = "good risk"
DECLINE = "decline"
APPROVE = "approve"
REFER = "refer"
"""Outside what the model was trained on: a person decides (see :mod:`preauth.referral`)."""

RESULT_KEYS = ("input_data", "probability_fraud", "is_fraud", "target", "confidence", "timestamp")
"""The original pipeline's result object, key for key (batch files use them as column names)."""

RESULTS_FILE_COLUMNS = ("id", *RESULT_KEYS, "decision", "reasons")
"""Every column a results file can give beside an application's own (the id, the result object's
keys, ``--explain``'s two): a CSV of results spreads the application's columns among them, so no
field of a schema may be spelled like one (a field ``decision`` was overwritten by the verdict)."""

ROW_COLUMNS = (
    "id",
    "request_id",
    "created_at",
    "channel",
    "model_version",
    "input",
    "probability",
    "target",
    "is_fraud",
    "confidence",
    "threshold",
    "reasons",
    "contributions",
    "decision",
)
"""The columns of a stored decision (the store's table has these, a sequence and a legacy key)."""

CSV_COLUMNS = (
    "decision_id",
    "probability_bad_risk",
    "target",
    "decision",
    "confidence",
    "model_version",
    "reasons",
)
"""A decision's cells in the page's results file."""

EXPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("decision_id", "text"),
    ("timestamp", "time"),
    ("request_id", "text"),
    ("channel", "text"),
    ("model_version", "text"),
    ("probability_bad_risk", "number"),
    ("threshold", "number"),
    ("target", "text"),
    ("decision", "text"),
    ("confidence", "number"),
    ("reasons", "text"),
    ("input", "text"),
    ("review_decision", "text"),
    ("reviewer", "text"),
    ("review_reason", "text"),
    ("reviewed_at", "time"),
    ("outcome", "text"),
    ("outcome_known_at", "time"),
)
"""The decisions export's columns and kinds (text, number, time): the model's decision, then the
person's (empty until reviewed), then what happened (empty until the outcome is known)."""


def target_of(bad: bool) -> str:
    return BAD_RISK if bad else GOOD_RISK


def verdict(probability: float, threshold: float, *, referred: bool = False) -> str:
    """approve, decline or refer: what a model's probability and threshold decide (refer first)."""
    return REFER if referred else DECLINE if probability >= threshold else APPROVE


SHADOW_COLUMNS = ("decision_id", "model_version", "probability", "threshold", "decision")
"""The columns of a stored shadow score (table ``shadow_scores``)."""


@dataclass(frozen=True, slots=True)
class ShadowScore:
    """What the shadow model (``preauth models shadow``) said about an application production decided.

    Kept beside the decision, never answered nor acted on: the evidence ``preauth models compare``
    weighs a challenger by, on the very applications the incumbent decided.
    """

    model_version: str
    probability: float
    threshold: float
    decision: str

    def row(self, decision_id: str) -> dict[str, Any]:
        """The stored row (:data:`SHADOW_COLUMNS`) for the decision it shadows."""
        return dict(zip(SHADOW_COLUMNS, self.row_values(decision_id), strict=True))

    def row_values(self, decision_id: str) -> tuple[Any, ...]:
        return (decision_id, self.model_version, self.probability, self.threshold, self.decision)


def result_object(input_data: Any, probability: float, bad: bool, timestamp: str) -> dict[str, Any]:
    """The original pipeline's result object for one scored application."""
    return dict(
        zip(
            RESULT_KEYS,
            (input_data, probability, bad, target_of(bad), max(probability, 1.0 - probability), timestamp),
            strict=True,
        )
    )


def _same(value: Any) -> Any:
    return value


def _utc(moment: Any) -> datetime:
    """A stored time in UTC: SQLite gives naive UTC datetimes back, a hand-made row may give text."""
    if not isinstance(moment, datetime):
        moment = datetime.fromisoformat(str(moment))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Decision:
    """One decided application: what was asked, what the model said, why, and when.

    ``replayed`` marks a decision given back for a repeated ``Idempotency-Key`` (not stored again).
    ``shadow`` is the shadow model's score of the same application, stored with the decision and in
    none of its shapes.
    A decision reads like the dict it replaced too (``decision["probability"]``), for callers
    that index by key.
    """

    id: str
    request_id: str
    created_at: datetime
    channel: str
    model_version: str
    input: Any
    probability: float
    target: str
    is_fraud: bool
    decision: str
    confidence: float
    threshold: float
    reasons: list[dict[str, Any]]
    contributions: dict[str, float] | None
    replayed: bool = False
    shadow: ShadowScore | None = None

    @property
    def timestamp(self) -> str:
        """When it was decided, ISO 8601 in UTC."""
        return self.created_at.isoformat()

    def __getitem__(self, key: str) -> Any:
        if key == "timestamp" or key in _FIELDS:
            return getattr(self, key)
        raise KeyError(key)

    def replay(self) -> Decision:
        """The same decision, given back for a repeated request."""
        return dataclasses.replace(self, replayed=True)

    # -- shapes ------------------------------------------------------------------------------

    def api(self) -> dict[str, Any]:
        """The ``/v1/decisions`` answer (no idempotency key, no internal fields)."""
        return {
            "id": self.id,
            "request_id": self.request_id,
            "timestamp": self.timestamp,
            "model_version": self.model_version,
            "input": self.input,
            "probability": self.probability,
            "target": self.target,
            "is_fraud": self.is_fraud,
            "decision": self.decision,
            "confidence": self.confidence,
            "threshold": self.threshold,
            "reasons": self.reasons,
            "contributions": self.contributions,
            "channel": self.channel,
        }

    def result_object(self, *, explain: bool = False) -> dict[str, Any]:
        """The original pipeline's result object (the ``/invocations`` answer).

        ``explain`` adds ``decision`` (approve, decline, refer) and ``reasons`` (a referral's
        first) after the original keys, as ``preauth predict --explain`` does in batch files:
        asked for, never by default, so a client reading the keys one by one sees no change.
        """
        out = result_object(self.input, self.probability, self.is_fraud, self.timestamp)
        if explain:
            out |= {"decision": self.decision, "reasons": self.reasons}
        return out

    def row_values(
        self,
        *,
        time: Callable[[datetime], Any] = _same,
        json: Callable[[Any], Any] = _same,
    ) -> tuple[Any, ...]:
        """The stored row's values in :data:`ROW_COLUMNS` order, built straight from the fields.

        A raw driver passes how it writes a time and a JSON value (SQLite: text); SQLAlchemy
        takes them as they are.
        """
        return (
            self.id,
            self.request_id,
            time(self.created_at),
            self.channel,
            self.model_version,
            json(self.input),
            self.probability,
            self.target,
            self.is_fraud,
            self.confidence,
            self.threshold,
            json(self.reasons),
            None if self.contributions is None else json(self.contributions),
            self.decision,
        )

    def row(self) -> dict[str, Any]:
        """The stored row, column by column."""
        return dict(zip(ROW_COLUMNS, self.row_values(), strict=True))

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Decision:
        """A stored row (any mapping of :data:`ROW_COLUMNS`) back as a decision."""
        bad = bool(row["is_fraud"])
        return cls(
            id=row["id"],
            request_id=row["request_id"],
            created_at=_utc(row["created_at"]),
            channel=row["channel"],
            model_version=row["model_version"],
            input=row["input"],
            probability=row["probability"],
            target=row["target"],
            is_fraud=bad,
            decision=row.get("decision") or (DECLINE if bad else APPROVE),
            confidence=row["confidence"],
            threshold=row["threshold"],
            reasons=row["reasons"],
            contributions=row["contributions"],
        )

    def csv_cells(self) -> list[Any]:
        """The decision's cells in the page's results file (:data:`CSV_COLUMNS`)."""
        return [
            self.id,
            f"{self.probability:.6f}",
            self.target,
            self.decision,
            f"{self.confidence:.6f}",
            self.model_version,
            "; ".join(str(r.get("text")) for r in self.reasons or []),
        ]

    def detail(self, review: Mapping[str, Any] | None, outcome: Mapping[str, Any] | None) -> dict[str, Any]:
        """The API answer with the person's review and the real outcome (None until there is one)."""
        return {**self.api(), "review": review, "outcome": outcome}

    def export_values(
        self,
        *,
        review: tuple[str, str, str, datetime] | None = None,
        outcome: tuple[str, datetime] | None = None,
    ) -> tuple[Any, ...]:
        """A row of the export in :data:`EXPORT_COLUMNS` order; ``review`` is (decision, reviewer,
        reason, when), ``outcome`` (outcome, known at). Input and reasons are JSON text."""
        import orjson

        return (
            self.id,
            self.created_at,
            self.request_id,
            self.channel,
            self.model_version,
            self.probability,
            self.threshold,
            self.target,
            self.decision,
            self.confidence,
            "; ".join(str(r.get("text")) for r in self.reasons or []),
            orjson.dumps(self.input).decode(),
            *(review or (None, None, None, None)),
            *(outcome or (None, None)),
        )

    def summary(self, row: int) -> dict[str, Any]:
        """The decision of an uploaded file's row, as the page lists it."""
        return {
            "row": row,
            "id": self.id,
            "probability": self.probability,
            "target": self.target,
            "decision": self.decision,
            "confidence": self.confidence,
            "reasons": [r.get("text") for r in self.reasons or []],
        }


_FIELDS = frozenset(f.name for f in dataclasses.fields(Decision))


def decided(
    *,
    id: str,
    request_id: str,
    created_at: datetime,
    channel: str,
    model_version: str,
    input: Any,
    probability: float,
    threshold: float,
    reasons: list[dict[str, Any]],
    contributions: dict[str, float] | None,
    refer: list[dict[str, Any]] | None = None,
) -> Decision:
    """A new decision: the verdict, its words and its confidence follow from probability and threshold.

    ``refer`` (reasons from :func:`preauth.referral.refer_reasons`) makes the decision ``refer``,
    those reasons first; the model's own probability and verdict are kept beside them.
    """
    bad = probability >= threshold
    return Decision(
        id=id,
        request_id=request_id,
        created_at=created_at,
        channel=channel,
        model_version=model_version,
        input=input,
        probability=probability,
        target=target_of(bad),
        is_fraud=bad,
        decision=verdict(probability, threshold, referred=bool(refer)),
        confidence=max(probability, 1.0 - probability),
        threshold=threshold,
        reasons=[*(refer or []), *reasons],
        contributions=contributions,
    )


def as_decision(item: Decision | Mapping[Any, Any]) -> Decision:
    """A decision to store; a mapping of :data:`ROW_COLUMNS` (a row made by hand) is taken too."""
    return item if isinstance(item, Decision) else Decision.from_row(item)
