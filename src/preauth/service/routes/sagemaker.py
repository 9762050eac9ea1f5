"""SageMaker's inference contract: ``GET /ping`` and ``POST /invocations``.

A script that called the original endpoint with boto3 (``sagemaker-runtime`` ``invoke_endpoint``)
works against this server by pointing ``endpoint_url`` at it. ``/invocations`` takes ``text/csv``
(with or without a header row; without one, the original column order) or ``application/json``
(one application, a list, or ``{"instances": [...]}``) and answers with the original result
objects: one object for one JSON object, else a list in input order. boto3 posts to
``/endpoints/{name}/invocations``, which is served the same way. A row that fails validation
gets ``{"input_data": ..., "error": {...}}`` in its place, so one bad row costs no other row its
result; when every row fails the answer is 422. Every decision is stored before the answer.

The result objects keep the original keys and only them, so an old script reading them key by key
sees no change. The decision vocabulary (approve, decline, refer) comes two ways, both through
SageMaker's own custom-attributes header, which boto3 passes both ways (``CustomAttributes``):
every answer's header counts the decisions (``approve=1,decline=0,refer=1``: a script that never
asked still learns a person must look at a row), and a request whose header holds ``explain``
gets ``decision`` and ``reasons`` after the original keys of each result object, as
``preauth predict --explain`` writes them in batch files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...applications import Schema
from ...applications.reading import TOO_DEEP, NotAnApplication, json_value
from ...applications.values import excerpt
from ...errors import InputError
from ..intake import SOURCE, check_records, records_from_body, records_from_csv
from ..runtime import runtime
from ..schemas import ERRORS, InvocationsAnswer, invocations_body
from ..security import ECHO_LIMIT, error_body, json_response, shorten

router = APIRouter(tags=["SageMaker contract"])
CSV_TYPES = ("text/csv", "application/csv")
JSON_TYPES = ("application/json", "application/jsonlines", "text/json")
SNIFFED = ("", "application/octet-stream", "text/plain")
CUSTOM_ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"
"""SageMaker's free-form header, passed through by ``invoke_endpoint`` as ``CustomAttributes``."""
VERDICTS = ("approve", "decline", "refer")


@router.get("/ping", summary="Health check: 200 once the model is loaded")
async def ping(request: Request) -> Response:
    rt = runtime(request)
    return json_response(200, {"status": "ok", "model_version": rt.source.current.version})


def parse_json(body: bytes) -> Any:
    """A request's JSON: orjson's, or where orjson refuses a value the files' reader takes as a bad
    value of its row (:func:`~preauth.applications.reading.json_value`: a number past a double such
    as ``1e400``, a lone surrogate ``"\\ud800"``), that reader's. One such value in one element of
    a batch once cost every application in it its decision (the whole body was 'invalid JSON').

    What is read can be written back (an Idempotency-Key's fingerprint, a refused row echoed):
    nesting deeper than orjson writes is refused as the files' reader refuses it (it was read,
    then a 500), and an integer past 64 bits is kept as its digits, as the reader keeps one past
    what Python reads."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        reason = str(error).split(":")[0]
    else:
        try:
            orjson.dumps(data)
        except orjson.JSONEncodeError:  # only nesting: orjson reads deeper than it writes
            raise InputError(TOO_DEEP, source=SOURCE) from None
        return data
    if reason == "depth limit exceeded":
        raise InputError(TOO_DEEP, source=SOURCE) from None
    try:
        return _writable(json_value(body.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InputError(f"invalid JSON ({reason})", source=SOURCE) from None


_DEEPEST = 254
"""The deepest nesting orjson writes."""


def _writable(data: Any) -> Any:
    """``data`` (freshly parsed, changed in place) with its integers past 64 bits as their digits;
    :data:`TOO_DEEP` refused past :data:`_DEEPEST` levels. Walked with a stack, not recursion."""
    stack: list[tuple[Any, int]] = [(data, 1)] if isinstance(data, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > _DEEPEST:
            raise InputError(TOO_DEEP, source=SOURCE)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
                node[key] = str(value)
            elif isinstance(value, dict | list):
                stack.append((value, depth + 1))
    return str(data) if isinstance(data, int) and not -(2**63) <= data < 2**64 else data


def _records(content_type: str, body: bytes, schema: Schema) -> tuple[list[Any], bool]:
    """The request's application objects, and whether the body was one object (answer one object)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in SNIFFED:
        kind = "application/json" if body.lstrip()[:1] in (b"{", b"[") else "text/csv"
    if kind in JSON_TYPES:
        if kind == "application/jsonlines":
            return _json_lines(body), False
        data = parse_json(body)
        return records_from_body(data), isinstance(data, dict) and "instances" not in data
    if kind in CSV_TYPES:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("the CSV body is not UTF-8", source=SOURCE) from None
        return records_from_csv(text, schema), False
    raise _Unsupported(kind)


def _json_lines(body: bytes) -> list[Any]:
    """A JSON Lines body's objects; a line that is not JSON is refused alone, as in a file."""
    records: list[Any] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(parse_json(line))
        except InputError as error:
            text = excerpt(line.decode("utf-8", "replace").strip())
            records.append(NotAnApplication(text, f"{error.message} on line {number}"))
    return records


class _Unsupported(Exception):
    pass


@router.post(
    "/invocations",
    summary="Score applications (SageMaker contract)",
    response_model=InvocationsAnswer,
    responses={**ERRORS, 415: {"description": "Content type other than text/csv or application/json."}},
    openapi_extra={"requestBody": invocations_body()},
)
async def invocations(request: Request) -> Response:
    return await _invoke(request)


@router.post(
    "/endpoints/{endpoint_name}/invocations",
    summary="Score applications, at the path boto3's invoke_endpoint calls (endpoint name ignored)",
    response_model=InvocationsAnswer,
    responses={**ERRORS, 415: {"description": "Content type other than text/csv or application/json."}},
    openapi_extra={"requestBody": invocations_body()},
)
async def endpoint_invocations(request: Request, endpoint_name: str) -> Response:
    return await _invoke(request)


def _refused(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> Response:
    """An error answer boto3 can read: the message also at the top level, where botocore looks for
    it (else a script sees an empty message), and the error type SageMaker gives a model's refusal,
    so ``except runtime.exceptions.ModelError`` in an old script still catches it."""
    body = error_body(status, message, errors)
    body["message"] = body["error"]["message"]
    return json_response(status, body, {"x-amzn-ErrorType": "ModelError"})


def _echoed(record: Mapping[str, Any]) -> dict[str, Any]:
    """A refused row as given, each text at most ``ECHO_LIMIT`` characters long."""
    return {
        shorten(str(k), ECHO_LIMIT): shorten(v, ECHO_LIMIT) if isinstance(v, str) else v
        for k, v in record.items()
    }


async def _invoke(request: Request) -> Response:
    rt = runtime(request)
    body = await request.body()
    try:
        schema = rt.source.current.bundle.schema
        records, single = _records(request.headers.get("content-type", ""), body, schema)
        checked = check_records(records, schema=schema)
    except _Unsupported as unsupported:
        return _refused(415, f"unsupported content type '{unsupported}'; send text/csv or application/json")
    except InputError as error:
        return _refused(422, str(error), [{"row": error.row, "field": error.column, "message": str(error)}])
    if not checked.accepted:
        problems = [p.as_dict() for p in checked.problems]
        return _refused(422, problems[0]["message"], problems)
    state = request.scope["state"]
    decisions = await rt.decider.decide(
        checked.accepted, request_id=state["request_id"], channel="invocations"
    )
    stored = await rt.keep(decisions)
    state["model_version"] = decisions[0].model_version
    state["decisions"] = len(stored)
    if rt.settings.log_application_data:
        state["application_data"] = [d.input for d in stored]
    results: list[Any] = [None] * len(checked.records)
    explain = wants_explain(request.headers.get(CUSTOM_ATTRIBUTES, ""))
    for item, decision in zip(checked.accepted, stored, strict=True):
        results[item.row - 1] = decision.result_object(explain=explain)
    for problem in checked.problems:
        results[problem.row - 1] = {
            "input_data": _echoed(checked.records[problem.row - 1]),
            "error": problem.as_dict(),
        }
    payload: Any = results[0] if single else results
    counts = ",".join(f"{v}={sum(d.decision == v for d in stored)}" for v in VERDICTS)
    return Response(orjson.dumps(payload), media_type="application/json", headers={CUSTOM_ATTRIBUTES: counts})


def wants_explain(attributes: str) -> bool:
    """Whether the custom attributes ask for ``explain`` (``explain``, ``explain=true``, among others
    separated by ``,`` or ``;``)."""
    for token in attributes.replace(";", ",").split(","):
        key, _, value = token.partition("=")
        if key.strip().lower() == "explain" and value.strip().lower() in ("", "true", "1", "yes"):
            return True
    return False
