"""Challengers over HTTP: ``GET /v1/models/compare`` weighs two versions on the decisions both scored.

The same numbers as ``preauth models compare`` (:func:`preauth.challengers.compare`). Without
``a`` and ``b`` it compares the served model with the shadow model, so the page can show the live
challenge without knowing the versions; the answer also says which versions have scores to pick
from and whether the shadow model is loaded.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ...challengers import bundle_costs, compare, read_pairs, scored_versions, version_names
from ..runtime import runtime
from ..schemas import ERRORS
from ..security import json_response
from .decisions import _BadQuery, time_window

router = APIRouter(prefix="/v1/models", tags=["Model"])
_TIME: dict[str, Any] = {"json_schema_extra": {"format": "date-time"}}
_VERSION: dict[str, Any] = {"max_length": 64, "pattern": "^[A-Za-z0-9._-]+$"}
RESAMPLES = 1000


@router.get(
    "/compare",
    summary="Compare two model versions on the stored decisions both scored (production and shadow)",
    responses=ERRORS,
)
async def compare_versions(
    request: Request,
    a: Annotated[
        str | None, Query(description="Version A, or an alias (default: the served model).", **_VERSION)
    ] = None,
    b: Annotated[
        str | None, Query(description="Version B, or an alias (default: the shadow model).", **_VERSION)
    ] = None,
    since: Annotated[str | None, Query(description="From this time (inclusive, ISO 8601).", **_TIME)] = None,
    until: Annotated[
        str | None, Query(description="Before this time (exclusive, ISO 8601).", **_TIME)
    ] = None,
) -> Response:
    rt = runtime(request)
    source = rt.source
    try:
        since_at, until_at = time_window(since, until)
    except _BadQuery as bad:
        return bad.answer()
    explicit = a is not None and b is not None
    shadow = source.shadow
    # By default B is the shadow; a shadow that is the production model too (just promoted, or
    # while the server follows the aliases) shadows nothing: "no shadow", not a 422 for asking.
    default_b = shadow.version if shadow.version != source.current.version else None
    a, b = version_names(source.models_dir, a or source.current.version, b or default_b or "")
    b = b or None
    live = {
        "production": source.current.version,
        "shadow": shadow.version,
        "shadow_loaded": shadow.served is not None,
        # Why the shadow is not loaded, without the server's paths (no answer carries one).
        "shadow_error": shadow.error and shadow.error.replace(str(source.models_dir), "models"),
    }
    versions = await asyncio.to_thread(scored_versions, rt.store)
    if b is None:
        message = (
            f"the shadow model {shadow.version} is the production model: nothing is shadowed"
            if shadow.version is not None
            else "no shadow model: `preauth models shadow vN` scores every request with vN beside production"
        )
        return json_response(
            200, {"a": a, "b": None, "n": 0, "message": message, "live": live, "versions": versions}
        )

    def work() -> dict[str, Any]:
        pairs = read_pairs(rt.store, a, b, since=since_at, until=until_at, known_only=explicit)
        return compare(pairs, bundle_costs(source.models_dir, a), resamples=RESAMPLES)

    result = await asyncio.to_thread(work)
    return json_response(200, {**result, "live": live, "versions": versions})
