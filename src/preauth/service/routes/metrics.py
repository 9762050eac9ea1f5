"""Prometheus metrics (``GET /metrics``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from ..runtime import runtime

router = APIRouter(tags=["Operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics: requests, latency, decisions by target, model version",
    response_class=PlainTextResponse,
    responses={200: {"description": "Prometheus text exposition format."}},
)
async def metrics(request: Request) -> Response:
    rt = runtime(request)
    rt.telemetry.serving(rt.source.current.version)
    return Response(rt.telemetry.exposition(), media_type=rt.telemetry.content_type)
