"""Outcomes of stored decisions: ``POST`` records whether the loan was repaid, ``GET`` reads it back.

Recording is idempotent: the same outcome (and date) again answers 200 with what is stored; a
different outcome for a decision that already has one is 409 (outcomes are never overwritten);
a decision that does not exist is 404.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ...errors import InputError
from ...outcomes import OUTCOMES, outcome_of, parse_outcome, record
from ...store import could_be_stored_id
from ..runtime import runtime
from ..schemas import ERRORS
from ..security import error_body, json_response
from .decisions import not_json
from .sagemaker import parse_json

router = APIRouter(prefix="/v1/decisions", tags=["Outcomes"])
SOURCE = "<request>"


class OutcomeAnswer(BaseModel):
    decision_id: str
    outcome: Literal["repaid", "defaulted"]
    known_at: str = Field(description="When the outcome became known (ISO 8601, UTC).")


OUTCOME_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "title": "Outcome",
                "required": ["outcome", "known_at"],
                "properties": {
                    "outcome": {"type": "string", "enum": list(OUTCOMES)},
                    "known_at": {
                        "type": "string",
                        "description": "The date (YYYY-MM-DD) or time (ISO 8601) it became known; not in the future.",
                    },
                },
            },
            "example": {"outcome": "repaid", "known_at": "2026-10-01"},
        }
    },
}


@router.post(
    "/{decision_id}/outcome",
    summary="Record what happened to a decided application (repaid or defaulted)",
    response_model=OutcomeAnswer,
    status_code=201,
    responses={
        **ERRORS,
        200: {"description": "The same outcome was already recorded: nothing changed."},
        404: {"description": "No decision with this id."},
        409: {"description": "A different outcome is already recorded (never overwritten)."},
        422: {"description": "A field is wrong, or the outcome is dated before the decision was made."},
        415: {"description": "Content type other than application/json."},
    },
    openapi_extra={"requestBody": OUTCOME_BODY},
)
async def record_outcome(request: Request, decision_id: str) -> Response:
    if (refused := not_json(request)) is not None:
        return refused
    body = parse_json(await request.body())
    if not isinstance(body, dict):
        raise InputError(
            'expected {"outcome": "repaid" | "defaulted", "known_at": "YYYY-MM-DD"}', source=SOURCE
        )
    if not could_be_stored_id(decision_id):
        return json_response(404, error_body(404, "no decision with that id"))
    outcome = parse_outcome(
        body.get("outcome"), body.get("known_at"), decision_id[:64], source=SOURCE, row=None
    )
    store = runtime(request).store
    (done,) = await asyncio.to_thread(record, store, [outcome], source="api")
    if done.status == "unknown":
        return json_response(404, error_body(404, f"no decision with id '{outcome.decision_id}'"))
    if done.status == "before":
        message = f"decision '{outcome.decision_id}': known_at {done.too_early()}"
        return json_response(
            422, error_body(422, message, [{"row": None, "field": "known_at", "message": message}])
        )
    if done.status == "conflict":
        field, reason = done.conflict()
        message = f"decision '{outcome.decision_id}': {reason}"
        errors = [{"row": None, "field": field, "message": message}]
        return json_response(409, error_body(409, message, errors))
    return json_response(201 if done.status == "created" else 200, outcome.as_dict())


@router.get(
    "/{decision_id}/outcome",
    summary="The recorded outcome of a decision",
    response_model=OutcomeAnswer,
    responses={**ERRORS, 404: {"description": "No outcome recorded for this id."}},
)
async def get_outcome(request: Request, decision_id: str) -> Response:
    if not could_be_stored_id(decision_id):
        return json_response(404, error_body(404, "no outcome recorded for that id"))
    found = await asyncio.to_thread(outcome_of, runtime(request).store, decision_id[:64])
    if found is None:
        return json_response(404, error_body(404, f"no outcome recorded for decision '{decision_id[:64]}'"))
    return json_response(200, found.as_dict())
