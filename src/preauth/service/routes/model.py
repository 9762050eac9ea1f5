"""The serving model: its card (``GET /v1/model``) and its evaluation report."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from ...referral import band_in_use
from ..runtime import runtime
from ..schemas import ERRORS, ModelCard
from ..security import error_body, json_response

router = APIRouter(prefix="/v1/model", tags=["Model"])
REPORT_FILE = "report.html"


@router.get(
    "",
    summary="The model being served: version, threshold, review band, metrics, label provenance",
    response_model=ModelCard,
    responses=ERRORS,
)
async def model_card(request: Request) -> Response:
    served = runtime(request).source.current
    meta = served.bundle.meta
    has_report = (served.bundle.path / REPORT_FILE).exists()
    card = {
        "version": served.version,
        "created_at": meta.get("created_at"),
        "threshold": served.bundle.threshold,
        "threshold_rule": meta.get("threshold_rule"),
        "review_band": band_in_use(meta),
        "calibration": served.bundle.calibration.as_json(),
        "features": served.bundle.features,
        "excluded": meta.get("excluded"),
        "metrics": meta.get("metrics", {}),
        "label_provenance": without_paths(meta.get("label_provenance")),
        "params": meta.get("params"),
        "library_versions": meta.get("library_versions"),
        "loaded_at": served.loaded_at.isoformat(),
        "report_url": "/v1/model/report" if has_report else None,
    }
    return json_response(200, card)


def without_paths(provenance: Any) -> Any:
    """Label provenance with the labels file by name only: no answer may carry an internal path."""
    if not isinstance(provenance, dict) or not isinstance(provenance.get("source"), str):
        return provenance
    return {**provenance, "source": PurePath(provenance["source"]).name}


@router.get(
    "/report",
    summary="The serving model's evaluation report (HTML)",
    responses={**ERRORS, 404: {"description": "No report in this bundle."}},
)
async def model_report(request: Request) -> Response:
    served = runtime(request).source.current
    path = served.bundle.path / REPORT_FILE
    if not path.exists():
        return json_response(404, error_body(404, f"model {served.version} has no report"))
    return FileResponse(path, media_type="text/html")
