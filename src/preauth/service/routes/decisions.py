"""The JSON API's decisions: score one application or a batch (stored), list them, get one.

``Idempotency-Key`` makes a retry safe: the first request with a key decides and stores; every
later request with the same key and the same body gets what was stored back
(``Idempotent-Replayed: true``), never a second record, even when the two race. The same key with
a different body, or on the other route, is refused (422): it is a new request reusing a key.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from ...decisions import Decision as Decided
from ...errors import InputError
from ...exports import MEDIA_TYPES, Filters, export_chunks
from ...outcomes import outcome_of
from ...reviews import review_of
from ...store import Claim, as_utc, could_be_stored_id, decode_cursor
from ..intake import SOURCE, check_records
from ..runtime import runtime
from ..schemas import ERRORS, BatchAnswer, Decision, DecisionDetail, DecisionPage, batch_body, single_body
from ..security import error_body, json_response
from .sagemaker import parse_json

router = APIRouter(prefix="/v1/decisions", tags=["Decisions"])
_TIME: dict[str, Any] = {"json_schema_extra": {"format": "date-time"}}
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        json_schema_extra={"pattern": "^[!-~](?:[ -~]{0,253}[!-~])?$", "maxLength": 255},
        description=(
            "1–255 visible ASCII characters, unique per request; a retry with the same key and body "
            "returns what was stored under it, the same key with another body is refused (422)."
        ),
    ),
]
_KEY = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?")


def _claim(key: str | None, route: str, body: Any) -> Claim | None:
    """The key this request claims, checked, with its body's fingerprint (key order ignored)."""
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        error = InputError("Idempotency-Key must be 1–255 visible ASCII characters (got an unusable value)")
        error.column = "Idempotency-Key"
        raise error
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return Claim(key, route, hashlib.sha256(canonical).hexdigest())


async def _replayed(request: Request, claim: Claim | None) -> list[Decided] | None:
    """The decisions already stored under the claimed key, or None when the key is new."""
    if claim is None:
        return None
    earlier = await asyncio.to_thread(runtime(request).store.replay, claim)
    if isinstance(earlier, InputError):
        raise earlier
    return earlier


def _problems_answer(problems: list[dict[str, Any]]) -> Response:
    return json_response(422, error_body(422, problems[0]["message"], problems))


def not_json(request: Request) -> Response | None:
    """415 for a body declared as anything but JSON (a missing content type is read as JSON).

    Every ``/v1`` route that takes a body asks here, so a form post or a text file is refused the
    same way on each of them.
    """
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
    if (refused := not_json(request)) is not None:
        return refused
    data = parse_json(await request.body())
    claim = _claim(idempotency_key, "decision", data)
    if not isinstance(data, dict):
        raise InputError(
            "expected one application object (for several, POST /v1/decisions/batch)", source=SOURCE
        )
    checked = check_records([data], all_fields=True, schema=rt.source.current.bundle.schema)
    if checked.problems:
        return _problems_answer([p.as_dict() for p in checked.problems])
    earlier = await _replayed(request, claim)
    if earlier:
        return json_response(200, earlier[0].api(), {"Idempotent-Replayed": "true"})
    state = request.scope["state"]
    decisions = await rt.decider.decide(
        checked.accepted, request_id=state["request_id"], channel=_channel(request)
    )
    (stored,) = await rt.keep(decisions, claim)
    state["model_version"] = decisions[0].model_version
    if rt.settings.log_application_data:
        state["application_data"] = stored.input
    if stored.replayed:
        return json_response(200, stored.api(), {"Idempotent-Replayed": "true"})
    return json_response(201, stored.api(), {"Location": f"/v1/decisions/{stored.id}"})


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
    if (refused := not_json(request)) is not None:
        return refused
    body = data = parse_json(await request.body())
    claim = _claim(idempotency_key, "batch", body)
    if isinstance(data, dict):
        data = data.get("instances", data.get("applications"))
    if not isinstance(data, list):
        raise InputError('expected a list of application objects, or {"instances": [...]}', source=SOURCE)
    checked = check_records(data, schema=rt.source.current.bundle.schema)
    problems = [p.as_dict() for p in checked.problems]
    if not checked.accepted:
        return _problems_answer(problems)
    earlier = await _replayed(request, claim)
    if earlier is not None:
        answer = {"decisions": [d.api() for d in earlier], "rejects": problems}
        return json_response(200, answer, {"Idempotent-Replayed": "true"})
    state = request.scope["state"]
    decisions = await rt.decider.decide(
        checked.accepted, request_id=state["request_id"], channel=_channel(request)
    )
    stored = await rt.keep(decisions, claim)
    state["model_version"] = decisions[0].model_version
    state["decisions"] = len(stored)
    headers = {"Idempotent-Replayed": "true"} if stored and stored[0].replayed else None
    return json_response(200, {"decisions": [d.api() for d in stored], "rejects": problems}, headers)


@router.get("", summary="List stored decisions, newest first", response_model=DecisionPage, responses=ERRORS)
def list_decisions(
    request: Request,
    since: Annotated[str | None, Query(description="From this time (inclusive, ISO 8601).", **_TIME)] = None,
    until: Annotated[
        str | None, Query(description="Before this time (exclusive, ISO 8601).", **_TIME)
    ] = None,
    target: Annotated[Literal["good risk", "bad risk"] | None, Query()] = None,
    model_version: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=64, description="next_cursor of the previous page.")
    ] = None,
) -> Response:
    try:
        chosen = _filters(since, until, target, model_version)
        cursor_in_range(cursor)
    except _BadQuery as bad:
        return bad.answer()
    page = runtime(request).store.find(
        since=chosen.since,
        until=chosen.until,
        target=target,
        model_version=model_version,
        limit=limit,
        cursor=cursor,
    )
    return json_response(200, {"decisions": [d.api() for d in page.items], "next_cursor": page.next_cursor})


def _filters(since: str | None, until: str | None, target: str | None, model_version: str | None) -> Filters:
    """The list's filters checked (the export takes the same): a bad one is a :class:`_BadQuery`."""
    _storable("model_version", model_version)
    since_at, until_at = time_window(since, until)
    return Filters(
        since=since_at,
        until=until_at,
        target=target,
        model_version=model_version,
    )


@router.get(
    "/export",
    summary="Export stored decisions with their reviews and outcomes (CSV or Parquet), filtered like the list",
    responses={
        **ERRORS,
        200: {
            "description": "The file, streamed; newest decision first.",
            "content": {MEDIA_TYPES["csv"]: {}, MEDIA_TYPES["parquet"]: {}},
        },
    },
)
def export_decisions(
    request: Request,
    format: Annotated[Literal["csv", "parquet"], Query(description="csv or parquet.")] = "csv",
    since: Annotated[str | None, Query(description="From this time (inclusive, ISO 8601).", **_TIME)] = None,
    until: Annotated[
        str | None, Query(description="Before this time (exclusive, ISO 8601).", **_TIME)
    ] = None,
    target: Annotated[Literal["good risk", "bad risk"] | None, Query()] = None,
    model_version: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    try:
        chosen = _filters(since, until, target, model_version)
    except _BadQuery as bad:
        return bad.answer()
    chunks = export_chunks(runtime(request).store, chosen, format)
    # The first chunk is made before the status is sent: a store failing from the start is an
    # error answer (503), not a 200 cut short. A failure later cuts the connection (see exports).
    first = next(chunks)
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    headers = {"Content-Disposition": f'attachment; filename="decisions_{stamp}.{format}"'}
    return StreamingResponse(
        itertools.chain([first], chunks), media_type=MEDIA_TYPES[format], headers=headers
    )


class _BadQuery(Exception):
    """A query parameter that parsed but that no store could look up: a 422 naming it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def answer(self) -> Response:
        message = f"{self.field}: {self.reason}"
        return json_response(422, error_body(422, message, [{"field": self.field, "message": message}]))


def bad_query(check: Callable[[], object]) -> Response | None:
    """The 422 answer for a query parameter ``check`` refuses, or None when it passes."""
    try:
        check()
    except _BadQuery as bad:
        return bad.answer()
    return None


_LARGEST_SEQ = 2**63 - 1  # a BIGINT: both stores overflow past it


def _moment(field: str, text: str | None) -> datetime | None:
    """An ISO 8601 time, and only that: a bare number is not read as seconds since 1970."""
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise _BadQuery(field, f"'{text[:40]}' is not an ISO 8601 time (2026-11-25T10:00:00+00:00)") from None


def _in_utc(field: str, moment: datetime | None) -> datetime | None:
    """The time in UTC, the stores' zone (:func:`~preauth.store.as_utc`, which refuses year 1 at +14:00)."""
    if moment is None:
        return None
    try:
        return as_utc(moment)
    except ValueError as error:
        raise _BadQuery(field, str(error)) from None


def time_window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """The ``since``/``until`` query pair every route reads, in UTC; a window that ends before it
    starts is a :class:`_BadQuery` naming ``until`` (the two swapped would otherwise answer an
    empty list, as if nothing had been decided)."""
    since_at = _in_utc("since", _moment("since", since))
    until_at = _in_utc("until", _moment("until", until))
    if since_at is not None and until_at is not None and until_at <= since_at:
        raise _BadQuery("until", f"{until_at.isoformat()} is not after since ({since_at.isoformat()})")
    return since_at, until_at


def _storable(field: str, text: str | None) -> None:
    """PostgreSQL text cannot hold a NUL character, so no stored value has one."""
    if text is not None and "\x00" in text:
        raise _BadQuery(field, "must not contain a NUL character")


def cursor_in_range(cursor: str | None) -> None:
    if not cursor:
        return
    try:
        position = decode_cursor(cursor)
    except InputError:
        raise _BadQuery("cursor", "not a cursor from this API") from None
    if not 0 < position <= _LARGEST_SEQ:
        raise _BadQuery("cursor", "not a cursor from this API")


@router.get(
    "/{decision_id}",
    summary="One stored decision, with its review and outcome (null until there is one)",
    response_model=DecisionDetail,
    responses={**ERRORS, 404: {"description": "No decision with this id."}},
)
def get_decision(request: Request, decision_id: str) -> Response:
    shown = decision_id[:64]
    found = runtime(request).store.get(decision_id) if could_be_stored_id(decision_id) else None
    if found is None:
        return json_response(404, error_body(404, f"no decision with id {shown!r}"))
    store = runtime(request).store
    review, outcome = review_of(store, found.id), outcome_of(store, found.id)
    shown_review = None if review is None else review.as_dict()
    shown_outcome = None if outcome is None else outcome.as_dict()
    return json_response(200, found.detail(shown_review, shown_outcome))
