"""Human review: the queue of referred decisions, and a reviewer's approve or decline with a reason.

``GET /v1/reviews?state=pending`` is the queue (referred decisions without a review, oldest
first); ``state=done`` lists the reviewed ones. ``POST /v1/decisions/{id}/review`` records a
person's decision: 201 with the stored review; 404 for an unknown id; 409 when the decision
already has a review (never overwritten: the first review and the model's decision both stay);
422 naming the field for a bad body, or ``decision_id`` when the model did not refer the decision.
With API keys the reviewer is the key's name; with the API open it is the body's ``reviewer``, or
``anonymous``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ...errors import InputError
from ...reviews import ANONYMOUS, MAX_REASON, REVIEW_DECISIONS, parse_review, queue, record_review
from ...store import could_be_stored_id
from ..runtime import runtime
from ..schemas import ERRORS, Decision
from ..security import caller, error_body, json_response
from .decisions import bad_query, cursor_in_range, not_json
from .sagemaker import parse_json

router = APIRouter(tags=["Reviews"])
SOURCE = "<request>"


class ReviewAnswer(BaseModel):
    decision_id: str
    reviewer: str = Field(description="The API key's name, or the body's reviewer when the API is open.")
    decision: Literal["approve", "decline"]
    reason: str
    reviewed_at: str = Field(description="When the review was stored (ISO 8601, UTC).")


class QueuedDecision(Decision):
    review: ReviewAnswer | None = None


class ReviewPage(BaseModel):
    decisions: list[QueuedDecision]
    next_cursor: str | None


REVIEW_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "title": "Review",
                "required": ["decision", "reason"],
                "properties": {
                    "decision": {"type": "string", "enum": list(REVIEW_DECISIONS)},
                    "reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON},
                    "reviewer": {
                        "type": "string",
                        "description": "Only when the API is open (no keys): who reviews. With keys, the key's name.",
                    },
                },
            },
            "example": {
                "decision": "approve",
                "reason": "Income verified by phone; amount matches the purpose.",
            },
        }
    },
}


@router.get(
    "/v1/reviews",
    summary="The review queue: referred decisions, oldest first",
    response_model=ReviewPage,
    responses=ERRORS,
)
def list_reviews(
    request: Request,
    state: Annotated[
        Literal["pending", "done"], Query(description="pending: not reviewed yet; done: reviewed.")
    ] = "pending",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=64, description="next_cursor of the previous page.")
    ] = None,
) -> Response:
    if (refused := bad_query(lambda: cursor_in_range(cursor))) is not None:
        return refused
    page = queue(runtime(request).store, state=state, limit=limit, cursor=cursor)
    return json_response(
        200, {"decisions": [item.api() for item in page.items], "next_cursor": page.next_cursor}
    )


@router.post(
    "/v1/decisions/{decision_id}/review",
    summary="A person approves or declines a referred decision, with a reason",
    response_model=ReviewAnswer,
    status_code=201,
    responses={
        **ERRORS,
        404: {"description": "No decision with this id."},
        409: {"description": "The decision already has a review (never overwritten)."},
        415: {"description": "Content type other than application/json."},
    },
    openapi_extra={"requestBody": REVIEW_BODY},
)
async def review_decision(request: Request, decision_id: str) -> Response:
    if (refused := not_json(request)) is not None:
        return refused
    verdict, reason, named = parse_review(parse_json(await request.body()), source=SOURCE)
    rt = runtime(request)
    keyed = caller(request)  # with API keys, the reviewer is the key's name, never the body's word
    if keyed is not None and named is not None and named != keyed:
        raise InputError(
            f"the reviewer is the API key's name ('{keyed}') when the API has keys; leave it out",
            source=SOURCE,
            column="reviewer",
        )
    reviewer = keyed or named or ANONYMOUS
    if not could_be_stored_id(decision_id):
        return json_response(404, error_body(404, "no decision with that id"))
    done = await asyncio.to_thread(
        record_review, rt.store, decision_id, reviewer=reviewer, decision=verdict, reason=reason
    )
    if done.status == "unknown":
        return json_response(404, error_body(404, f"no decision with id '{decision_id}'"))
    if done.status == "not_referred":
        message = (
            f"decision_id: the model decided '{done.model_decision}' itself; "
            "only referred decisions are reviewed"
        )
        return json_response(422, error_body(422, message, [{"field": "decision_id", "message": message}]))
    if done.status == "conflict":
        assert done.stored is not None
        message = (
            f"decision '{decision_id}' was already reviewed by {done.stored.reviewer} "
            f"({done.stored.decision}, {done.stored.created_at.isoformat()}); reviews are never overwritten"
        )
        errors = [{"field": "decision", "message": message}]
        return json_response(409, error_body(409, message, errors))
    assert done.review is not None
    return json_response(201, done.review.as_dict(), {"Location": f"/v1/decisions/{decision_id}"})
