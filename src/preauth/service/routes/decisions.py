"""The JSON API's decisions: score one application or a batch (stored), list them, get one.

``Idempotency-Key`` makes a retry safe: the first request with a key decides and stores; every
later request with the same key gets that stored decision back (``Idempotent-Replayed: true``),
never a second record, even when the two race.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from ...errors import InputError
from ..intake import SOURCE, check_records
from ..runtime import runtime
from ..schemas import ERRORS, BatchAnswer, Decision, DecisionPage, batch_body, single_body
from ..security import error_body, json_response
from ..serving import public
from .sagemaker import parse_json

router = APIRouter(prefix="/v1/decisions", tags=["Decisions"])
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Any unique string; a repeated key returns the decision stored under it.",
    ),
]


def _problems_answer(problems: list[dict[str, Any]]) -> Response:
    return json_response(422, error_body(422, problems[0]["message"], problems))


def _not_json(request: Request) -> Response | None:
    """415 for a body declared as anything but JSON (a missing content type is read as JSON)."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind in ("", "application/json", "text/json") or kind.endswith("+json"):
        return None
    return json_response(415, error_body(415, f"unsupported content type '{kind}'; send application/json"))


@router.post(
    "",
    summary="Decide one application (stored before the answer)",
    response_model=Decision,
    responses={
        **ERRORS,
        200: {"description": "The decision, replayed for a repeated Idempotency-Key."},
        415: {"description": "Content type other than application/json."},
    },
    status_code=201,
    openapi_extra={"requestBody": single_body()},
)
async def create_decision(request: Request, idempotency_key: IdempotencyKey = None) -> Response:
    rt = runtime(request)
    if (refused := _not_json(request)) is not None:
        return refused
    if idempotency_key:
        earlier = await asyncio.to_thread(rt.store.by_idempotency_key, idempotency_key)
        if earlier is not None:
            return json_response(200, public(earlier), {"Idempotent-Replayed": "true"})
    data = parse_json(await request.body())
    if not isinstance(data, dict):
        raise InputError(
            "expected one application object (for several, POST /v1/decisions/batch)", source=SOURCE
        )
    checked = check_records([data], all_fields=True, schema=rt.source.current.bundle.schema)
    if checked.problems:
        return _problems_answer([p.as_dict() for p in checked.problems])
    state = request.scope["state"]
    decisions = await rt.decider.decide(
        checked.accepted,
        request_id=state["request_id"],
        channel=_channel(request),
        idempotency_key=idempotency_key,
    )
    (stored,) = await rt.keep(decisions)
    state["model_version"] = decisions[0]["model_version"]
    if rt.settings.log_application_data:
        state["application_data"] = stored["input"]
    if stored.get("replayed"):
        return json_response(200, public(stored), {"Idempotent-Replayed": "true"})
    return json_response(201, public(stored), {"Location": f"/v1/decisions/{stored['id']}"})


def _channel(request: Request) -> str:
    """``page`` for the web page's form (it says so in a header), else ``api``."""
    return "page" if request.headers.get("x-preauth-channel") == "page" else "api"


@router.post(
    "/batch",
    summary="Decide several applications; bad rows are returned as rejects, the others decided",
    response_model=BatchAnswer,
    responses={**ERRORS, 415: {"description": "Content type other than application/json."}},
    openapi_extra={"requestBody": batch_body()},
)
async def create_batch(request: Request, idempotency_key: IdempotencyKey = None) -> Response:
    rt = runtime(request)
    if (refused := _not_json(request)) is not None:
        return refused
    data = parse_json(await request.body())
    if isinstance(data, dict):
        data = data.get("instances", data.get("applications"))
    if not isinstance(data, list):
        raise InputError('expected a list of application objects, or {"instances": [...]}', source=SOURCE)
    checked = check_records(data, schema=rt.source.current.bundle.schema)
    problems = [p.as_dict() for p in checked.problems]
    if not checked.accepted:
        return _problems_answer(problems)
    state = request.scope["state"]
    decisions = await rt.decider.decide(
        checked.accepted,
        request_id=state["request_id"],
        channel=_channel(request),
        idempotency_key=idempotency_key if idempotency_key is None else f"{idempotency_key}#batch",
    )
    stored = await rt.keep(decisions)
    state["model_version"] = decisions[0]["model_version"]
    state["decisions"] = len(stored)
    return json_response(200, {"decisions": [public(d) for d in stored], "rejects": problems})


@router.get("", summary="List stored decisions, newest first", response_model=DecisionPage, responses=ERRORS)
def list_decisions(
    request: Request,
    since: Annotated[datetime | None, Query(description="From this time (inclusive, ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time (exclusive, ISO 8601).")] = None,
    target: Annotated[Literal["good risk", "bad risk"] | None, Query()] = None,
    model_version: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=64, description="next_cursor of the previous page.")
    ] = None,
) -> Response:
    page = runtime(request).store.find(
        since=since, until=until, target=target, model_version=model_version, limit=limit, cursor=cursor
    )
    return json_response(200, {"decisions": [public(d) for d in page.items], "next_cursor": page.next_cursor})


@router.get(
    "/{decision_id}",
    summary="One stored decision",
    response_model=Decision,
    responses={**ERRORS, 404: {"description": "No decision with this id."}},
)
def get_decision(request: Request, decision_id: str) -> Response:
    found = runtime(request).store.get(decision_id[:64])
    if found is None:
        return json_response(404, error_body(404, f"no decision with id '{decision_id[:64]}'"))
    return json_response(200, public(found))
