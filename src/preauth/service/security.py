"""The service's front door: API keys, body limits, request ids, access logs, and error answers.

One plain ASGI middleware (no per-request task or body buffering, so it costs microseconds)
wraps every request:

* ``/ping`` and the page's public assets are open; everything else needs a key from
  ``PREAUTH_API_KEYS`` when keys are configured, sent as ``Authorization: Bearer KEY`` or
  ``X-API-Key: KEY`` and compared in constant time (:func:`hmac.compare_digest`), else 401.
  The key's name is the caller (:func:`caller`): a review is signed by it.
* A body larger than ``max_body_bytes`` is refused with 413, by its ``Content-Length`` or, for a
  chunked body, as soon as the running count passes the limit.
* Every answer carries ``X-Request-ID``; one JSON access-log line per request, without
  application data unless ``log_application_data`` is on.
* Every answer says ``X-Content-Type-Options: nosniff`` and may not be framed (``X-Frame-Options:
  DENY``, CSP ``frame-ancestors 'none'``); answers that carry decisions (personal credit data:
  ``/v1/decisions``, ``/invocations``, ``/ui/`` but its static assets) are ``Cache-Control: no-store``.
* Any unexpected failure is logged with its traceback and answered with a plain 500 that names the
  request id, never the traceback or a path.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from ..errors import InputError, PreauthError
from .observability import Telemetry

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("preauth.access")
log = logging.getLogger("preauth.service")
OPEN_PATHS = ("/ping",)
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # a caller's X-Request-ID is kept only if it is this tame
NO_STORE_PREFIXES = ("/v1/decisions", "/v1/reviews", "/invocations", "/endpoints/", "/ui/")
"""Answers under these paths carry decisions or applications: no cache may keep them."""
STORABLE_PREFIXES = ("/ui/static/",)
"""...except the page's assets, which hold no data."""
ECHO_LIMIT = 100
"""At most this many characters of a value the client sent are echoed in an error answer."""
TEXT_LIMIT = 1000
"""No string in an error answer is longer than this (plus the ellipsis)."""
_EVERY_ANSWER = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
)
_NOT_FRAMED = b"frame-ancestors 'none'"


def caller(request: Request) -> str | None:
    """The name of the request's API key; None when the API is open (no keys) or the path is."""
    found = request.scope.get("state", {}).get("caller")
    return str(found) if found is not None else None


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes the limit."""


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


def error_body(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The one shape of an error answer; values the client sent are echoed at most ECHO_LIMIT long.

    A 1 MB field would otherwise come back four times (value, reason, message, summary).
    """
    errors = [dict(e) for e in errors or ()]
    for error in errors:
        value = error.get("value")
        if isinstance(value, str) and len(value) > ECHO_LIMIT:
            short = shorten(value, ECHO_LIMIT)
            message = message.replace(value, short)
            for key, text in error.items():
                if isinstance(text, str):
                    error[key] = text.replace(value, short)
    body: dict[str, Any] = {"error": {"status": status, "message": shorten(message, TEXT_LIMIT)}}
    if errors:
        body["error"]["errors"] = [
            {k: shorten(v, TEXT_LIMIT) if isinstance(v, str) else v for k, v in e.items()} for e in errors
        ]
    return body


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "\u2026"


def _hardened(path: str, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """An answer's headers with the protections every answer gets (see the module docstring)."""
    names = {name.lower() for name, _ in headers}
    out = [*headers, *(h for h in _EVERY_ANSWER if h[0] not in names)]
    if b"content-security-policy" in names:
        out = [
            (
                name,
                value
                if name.lower() != b"content-security-policy" or b"frame-ancestors" in value
                else value.rstrip(b"; ") + b"; " + _NOT_FRAMED,
            )
            for name, value in out
        ]
    else:
        out.append((b"content-security-policy", _NOT_FRAMED))
    if path.startswith(NO_STORE_PREFIXES) and not path.startswith(STORABLE_PREFIXES):
        out = [(n, v) for n, v in out if n.lower() != b"cache-control"]
        out.append((b"cache-control", b"no-store"))
    return out


class FrontDoor:
    """The ASGI middleware described in the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_keys: Iterable[tuple[str, str]] = (),
        max_body_bytes: int = 5_000_000,
        public_prefixes: Iterable[str] = (),
        telemetry: Telemetry | None = None,
    ) -> None:
        self.app = app
        # (name, key) pairs as Settings.named_api_keys gives them: the one place keys are named.
        self.keys = [(name, key.encode()) for name, key in api_keys]
        self.max_body = max_body_bytes
        self.public_prefixes = tuple(public_prefixes)
        self.telemetry = telemetry

    def _is_open(self, path: str) -> bool:
        if path in OPEN_PATHS or not self.keys:
            return True
        # "/" (the page) is an exact path: as a prefix it would open every route.
        return any(
            path == p or (p != "/" and p.endswith("/") and path.startswith(p)) for p in self.public_prefixes
        )

    def _caller(self, scope: Scope) -> str | None:
        """The name of the key the request offers, or None when it offers none that is known."""
        offered: list[bytes] = []
        for name, value in scope.get("headers", ()):
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                offered.append(value[7:].strip())
            elif name == b"x-api-key":
                offered.append(value.strip())
        granted: str | None = None
        for candidate in offered:
            for name, key in self.keys:  # no early exit: the time taken says nothing about which key
                if hmac.compare_digest(candidate, key) and granted is None:
                    granted = name
        return granted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        offered_id = _header(scope, b"x-request-id")
        request_id = offered_id if offered_id and _SAFE_ID.fullmatch(offered_id) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        path = scope["path"]
        status_holder = [500]
        response_started = [False]
        id_header = (b"x-request-id", request_id.encode("latin-1", "replace"))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_started[0] = True
                status_holder[0] = message["status"]
                message["headers"] = _hardened(path, [*message.get("headers", []), id_header])
            await send(message)

        async def answer(status: int, message: str, headers: dict[str, str] | None = None) -> None:
            response = json_response(status, error_body(status, message), headers)
            await response(scope, receive, send_wrapper)

        try:
            is_open = self._is_open(path)
            key_name = None if is_open else self._caller(scope)
            if key_name is not None:
                state["caller"] = key_name
            if not is_open and key_name is None:
                await answer(401, "missing or invalid API key", {"WWW-Authenticate": "Bearer"})
            elif (length := _content_length(scope)) is not None and length > self.max_body:
                await answer(413, f"request body is larger than {self.max_body} bytes")
            else:
                await self.app(scope, self._limited(receive), send_wrapper)
        except BodyTooLarge:
            if not response_started[0]:
                await answer(413, f"request body is larger than {self.max_body} bytes")
        except Exception as error:
            foreseen = _foreseen(error) if response_started[0] else None
            if foreseen is not None:
                # A streamed answer failing in a way the code foresaw (a store failing partway
                # through an export): its own line says it all. The connection is cut, so the
                # client sees the answer incomplete.
                log.error("%s %s (request id %s) cut short: %s", scope["method"], path, request_id, foreseen)
            else:
                log.exception(
                    "unhandled error in request %s %s (request id %s)", scope["method"], path, request_id
                )
            if not response_started[0]:
                await answer(500, f"internal error; quote request id {request_id}")
        finally:
            elapsed = time.perf_counter() - started
            route = _route_label(scope)
            if self.telemetry is not None:
                self.telemetry.observe_request(route, scope["method"], status_holder[0], elapsed)
            if access_log.isEnabledFor(logging.INFO):
                entry: dict[str, Any] = {
                    "event": "request",
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": path,
                    "status": status_holder[0],
                    "duration_ms": round(elapsed * 1000, 3),
                    "client": (scope.get("client") or ("", 0))[0],
                }
                for key in ("model_version", "decisions", "application_data"):
                    if key in state:
                        entry[key] = state[key]
                access_log.info(orjson.dumps(entry).decode())

    def _limited(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge()
            return message

        return limited


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _route_label(scope: Scope) -> str:
    """The route template, so that metrics do not grow a series per decision id."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str):
        return template
    return "other"


def _foreseen(error: BaseException | None) -> PreauthError | None:
    """The :class:`PreauthError` behind a failure after the answer started: Starlette wraps one
    its handlers could no longer answer ("response already started") in a RuntimeError."""
    while error is not None:
        if isinstance(error, PreauthError):
            return error
        error = error.__cause__
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Errors as ``{"error": {"status", "message", "errors": [...]}}``: no traceback, no path."""

    @app.exception_handler(InputError)
    async def _input_error(request: Request, error: InputError) -> Response:
        errors = [{"row": error.row, "field": error.column, "message": str(error)}]
        return json_response(422, error_body(422, str(error), errors))

    @app.exception_handler(PreauthError)
    async def _preauth_error(request: Request, error: PreauthError) -> Response:
        return json_response(error.http_status, error_body(error.http_status, str(error)))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> Response:
        errors = []
        for item in error.errors():
            location = [str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path")]
            field = ".".join(location) or None
            message = str(item.get("msg", "invalid value"))
            errors.append({"field": field, "message": f"{field}: {message}" if field else message})
        summary = "; ".join(str(e["message"]) for e in errors) or "invalid request"
        return json_response(422, error_body(422, summary, errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        message = error.detail if isinstance(error.detail, str) else "request refused"
        headers = dict(error.headers) if error.headers else {}
        if error.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return json_response(error.status_code, error_body(error.status_code, message), headers or None)


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (Starlette names only the first route's).

    A literal path outranks a template: ``/v1/decisions/batch`` is the batch resource (POST), even
    though ``/v1/decisions/{decision_id}`` would also match it.
    """
    path = request.url.path
    matching = [
        (route.path, route.methods)
        for route in iter_route_contexts(request.app.routes)
        if route.path and route.methods and compile_path(route.path)[0].match(path)
    ]
    literal = [m for p, m in matching if "{" not in p]
    return ", ".join(
        sorted({method for methods in (literal or [m for _, m in matching]) for method in methods})
    )
