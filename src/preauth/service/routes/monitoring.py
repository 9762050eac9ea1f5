"""``GET /v1/monitoring``: the monitoring report of a model (drift, rates, live quality) as JSON.

The same function as ``preauth monitor --format json`` (:func:`preauth.monitoring.monitor`); by
default the served model's decisions, or those of ``model`` (a version or alias of the models
directory).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ...bundles import resolve
from ...errors import ModelBundleError
from ...monitoring import monitor
from ..runtime import runtime
from ..schemas import ERRORS
from ..security import json_response
from .decisions import _TIME, _BadQuery, _storable, time_window

router = APIRouter(prefix="/v1/monitoring", tags=["Model"])


@router.get(
    "",
    summary="Drift (PSI per input and of the score), decision rates over time and live AUC/calibration",
    responses=ERRORS,
)
async def monitoring(
    request: Request,
    since: Annotated[str | None, Query(description="From this time (inclusive, ISO 8601).", **_TIME)] = None,
    until: Annotated[
        str | None, Query(description="Before this time (exclusive, ISO 8601).", **_TIME)
    ] = None,
    model: Annotated[
        str | None,
        Query(max_length=64, description="A version (v3) or alias; default: the served model."),
    ] = None,
    every: Annotated[Literal["day", "week"], Query(description="Period of the rates over time.")] = "day",
) -> Response:
    rt = runtime(request)
    try:
        since_at, until_at = time_window(since, until)
        _storable("model", model)
        bundle_dir = _bundle_dir(rt.source.current.bundle.path, rt.settings.models_dir, model)
    except _BadQuery as bad:
        return bad.answer()
    report = await asyncio.to_thread(
        monitor, rt.store, bundle_dir, since=since_at, until=until_at, every=every
    )
    return json_response(200, report)


def _bundle_dir(served: Path, models_dir: Path, model: str | None) -> Path:
    """The served bundle, or the named version or alias of the models directory (never a path)."""
    if model is None:
        return served
    if "/" in model or "\\" in model or model.startswith("."):
        raise _BadQuery("model", f"'{model}' is not a version or alias name")
    try:
        return resolve(models_dir, model)
    except ModelBundleError as error:
        raise _BadQuery("model", str(error)) from None
