"""The web page served at ``/``: score an applicant, browse decisions, score a file, see the model.

The page is one HTML document, a stylesheet and a script, all served by this router (no CDN, so
it works on a machine without internet). The form is generated from
:data:`preauth.applications.FIELDS`, like every other view of an application. The page itself
holds no data and is public; everything it shows comes from the JSON API with the user's API key
(kept in ``sessionStorage``, sent as ``Authorization: Bearer``), so switching keys on protects
the data without locking people out of the page.

Routes of its own, besides ``/`` and its assets, all behind the API key like the JSON API:

* ``GET /ui/model``: the serving model's card (version, labels it learned from, threshold, key
  metrics, which versions have stored decisions).
* ``GET /ui/report``: the serving model's ``report.html``, built on first request if missing.
* ``POST /ui/batch``: a file upload (CSV, JSON or Parquet) scored and stored like API decisions;
  answers with a results file (one line per input row, rejected rows with their reasons).
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from ..applications import GERMAN, MALFORMED_ROWS, Field, Schema, cell_text, normalize_name, read_table
from ..decisions import CSV_COLUMNS, Decision
from ..errors import InputError, ModelBundleError
from ..files import spreadsheet_safe
from ..referral import band_in_use
from ..report import REPORT_FILE, RISK_NAME, trained_label_name, write_report
from .intake import Problem, check_records
from .runtime import runtime
from .security import error_body, json_response

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"
STATIC_PREFIX = "/ui/static/"
PUBLIC_PATHS: tuple[str, ...] = ("/", STATIC_PREFIX)
"""Open without an API key: the page shell (no data) and its assets. A trailing slash = prefix."""
BATCH_CHANNEL = "page-batch"
UPLOAD_SUFFIXES = {".csv", ".txt", ".json", ".jsonl", ".ndjson", ".parquet", ".pq"}
_MEDIA = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
KEY_METRICS = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "brier")

router = APIRouter(include_in_schema=False)


# --------------------------------------------------------------------------------------------
# The page and its assets


def form_fields(schema: Schema = GERMAN) -> list[dict[str, Any]]:
    """The form's inputs, one per field of the served model's schema: selects for categories (with
    their display labels), bounded numbers otherwise."""
    out = []
    for f in schema.fields:
        entry: dict[str, Any] = {"name": f.name, "id": f"field-{f.key}", "description": f.description}
        if f.is_category:
            options = [(c, f.readable.get(c, c)) for c in f.categories]
            if f.missing_is_unknown:
                said = f.readable.get(str(f.missing)) or (
                    "unknown / not given" if f.missing == "unknown" else f"{f.missing} / not given"
                )
                options.append(("", said))
            elif not f.required:
                options.append(("", "not given"))
            entry.update(kind="select", options=options, value=str(f.example), required=f.required)
        else:
            entry.update(kind="number", value=f.example, required=not f.missing_allowed, **_bounds(f))
        out.append(entry)
    return out


def _bounds(f: Field) -> dict[str, Any]:
    step = "1" if f.kind == "integer" else "any"
    if f.positive:
        return {"min": "1" if f.kind == "integer" else "0.01", "max": None, "step": step}
    return {"min": f"{f.minimum:g}", "max": f"{f.maximum:g}", "step": step}


LISTED = 3
"""How many of an application's fields the decisions list shows beside each decision."""


def listed_fields(schema: Schema = GERMAN) -> list[dict[str, Any]]:
    """The application columns of the decisions list: the schema's last ``LISTED`` fields that are
    not protected attributes (German Credit: credit amount, duration, purpose, the loan itself).

    A stored decision keeps its input as the caller spelled it, so each column carries every
    spelling the schema accepts for its field (normalized as :func:`normalize_name` does)."""
    shown = [f for f in schema.fields if f.name not in schema.protected][-LISTED:]
    return [
        {
            "name": f.name,
            "spellings": " ".join(dict.fromkeys(normalize_name(n) for n in (f.name, f.key, *f.aliases))),
            "numeric": not f.is_category,
        }
        for f in shown
    ]


_page_cache: dict[str, str] = {}


def render_page(schema: Schema = GERMAN) -> str:
    """The page's HTML, rendered once per schema (it depends only on the served model's schema)."""
    if schema.fingerprint not in _page_cache:
        import jinja2

        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=jinja2.StrictUndefined
        )
        _page_cache[schema.fingerprint] = env.get_template("page.html").render(
            fields=form_fields(schema), listed=listed_fields(schema), static=STATIC_PREFIX
        )
    return _page_cache[schema.fingerprint]


@router.get("/", response_class=HTMLResponse)
def page(request: Request) -> HTMLResponse:
    schema = runtime(request).source.current.bundle.schema
    return HTMLResponse(render_page(schema), headers={"Cache-Control": "no-cache"})


@router.get(STATIC_PREFIX + "{name}")
def static(name: str) -> Response:
    """Only the files shipped in ``static/`` by their plain names: no paths, no traversal."""
    path = STATIC_DIR / name
    if "/" in name or "\\" in name or name.startswith(".") or not path.is_file():
        return Response(status_code=404)
    return FileResponse(path, media_type=_MEDIA.get(path.suffix), headers={"Cache-Control": "no-cache"})


# --------------------------------------------------------------------------------------------
# The serving model


def model_card(meta: dict[str, Any]) -> dict[str, Any]:
    """What a person needs to know about the serving model, each metric with what it was measured against."""
    metrics = meta.get("metrics") or {}
    measured = []
    for key in ("holdout", "against_risk"):
        found = metrics.get(key)
        if isinstance(found, dict):
            against = found.get("measured_against") or (
                trained_label_name(meta) if key == "holdout" else RISK_NAME
            )
            measured.append(
                {
                    "measured_against": against,
                    "n": found.get("n"),
                    "positives": found.get("positives"),
                    **{m: found.get(m) for m in KEY_METRICS},
                }
            )
    provenance = meta.get("label_provenance") or {}
    return {
        "version": meta.get("version"),
        "created_at": meta.get("created_at"),
        "learned_from": trained_label_name(meta),
        "label_source": PurePath(provenance["source"]).name if provenance.get("source") else None,
        "provider": provenance.get("provider"),
        "prompt_version": provenance.get("prompt_version"),
        "threshold": meta.get("threshold"),
        "review_band": band_in_use(meta),
        "features": meta.get("features", []),
        "excluded": meta.get("excluded", []),
        "metrics": measured,
        "train_auc": metrics.get("train_auc"),
        "cv_auc": metrics.get("cv_auc"),
        "auc_gap": metrics.get("auc_gap"),
    }


@router.get("/ui/model")
async def ui_model(request: Request) -> dict[str, Any]:
    rt = runtime(request)
    bundle = rt.source.current.bundle
    card = model_card(bundle.meta)
    card["versions_with_decisions"] = await run_in_threadpool(rt.store.versions)
    card["has_report"] = (bundle.path / REPORT_FILE).exists() or (bundle.path / "holdout.parquet").exists()
    return card


_report_lock = asyncio.Lock()


@router.get("/ui/report")
async def ui_report(request: Request) -> Response:
    """The serving model's report; built once when training did not leave one."""
    bundle = runtime(request).source.current.bundle
    path = bundle.path / REPORT_FILE
    if not path.exists():
        async with _report_lock:
            if not path.exists():
                try:
                    await run_in_threadpool(write_report, bundle.path)
                except ModelBundleError as error:
                    # 404 as /v1/model/report says it, and the reason without the bundle's directory:
                    # no answer names a path of the server's.
                    reason = str(error).removeprefix(f"{bundle.path}: ")
                    message = f"model {bundle.version} has no report: {reason}"
                    return json_response(404, error_body(404, message))
    return FileResponse(path, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})


# --------------------------------------------------------------------------------------------
# Batch: a file in, a results file out


@router.post("/ui/batch")
async def ui_batch(request: Request, file: UploadFile = File(...)) -> dict[str, Any]:  # noqa: B008
    """Score every valid row of an uploaded file and store each decision like the JSON API does.

    One bad row never costs the others their results: it gets a line in the results file with its
    reason, in the same one-line form the CLI prints (file, row, column).
    """
    rt = runtime(request)
    name = Path(file.filename or "upload.csv").name
    data = await file.read()
    table = await run_in_threadpool(_read_upload, name, data)
    served = rt.source.current
    checked = await run_in_threadpool(
        functools.partial(check_records, schema=served.bundle.schema), table.to_dict("records")
    )
    request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
    decisions: Sequence[Decision] = []
    if checked.accepted:
        made = await rt.decider.decide(checked.accepted, request_id=request_id, channel=BATCH_CHANNEL)
        decisions = await rt.keep(made)
    rejects = []
    for problem in _with_malformed_rows(checked.problems, table):
        answer = problem.as_dict()  # a huge value is echoed short, as in every other answer
        answer["message"] = str(
            InputError(answer["reason"], source=name, row=problem.row, column=problem.column)
        )
        rejects.append(answer)
    results = results_csv(table, [a.row for a in checked.accepted], decisions, rejects)
    stem = Path(name).stem or "upload"
    return {
        "source": name,
        "rows": len(table),
        "scored": len(decisions),
        "rejected": len(rejects),
        "model_version": served.version,
        "rejects": rejects,
        "decisions": [
            d.summary(row) for row, d in zip([a.row for a in checked.accepted], decisions, strict=True)
        ][:200],
        "filename": f"{stem}-results.csv",
        "results_csv": results,
    }


def _with_malformed_rows(problems: list[Problem], table: Any) -> list[Problem]:
    """A CSV row or JSON line that the reader could not split is refused for that, not as empty cells."""
    malformed = table.attrs.get(MALFORMED_ROWS, {})
    kept = [p for p in problems if p.row not in malformed]
    split = [Problem(row, None, text, reason) for row, (text, reason) in malformed.items()]
    return sorted([*kept, *split], key=lambda p: p.row)


def _read_upload(name: str, data: bytes) -> Any:
    """The upload as a table of text cells, read by the same reader as the CLI (any format it knows)."""
    suffix = Path(name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        suffix = ".csv"
    with tempfile.TemporaryDirectory(prefix="preauth-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return read_table(path)
        except InputError as error:
            raise InputError(error.message, source=name, row=error.row, column=error.column) from None


RESULT_COLUMNS = ("row", "status", *CSV_COLUMNS, "error")


def results_csv(
    table: Any, rows: list[int], decisions: Sequence[Decision], rejects: list[dict[str, Any]]
) -> str:
    """One line per input row, in input order: its values, then its decision or why it was rejected."""
    by_row = dict(zip(rows, decisions, strict=True))
    rejected = {r["row"]: r for r in rejects}
    given = [str(c) for c in table.columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*RESULT_COLUMNS, *[c or "index" for c in given]])
    for number, values in enumerate(table.itertuples(index=False, name=None), start=1):
        decision = by_row.get(number)
        if decision is not None:
            head = [number, "scored", *decision.csv_cells(), ""]
        else:
            problem = rejected.get(number)
            message = problem["message"] if problem else "not scored"
            head = [number, "rejected", *("" for _ in CSV_COLUMNS), message]
        # The file goes back to a spreadsheet: a cell the user sent that starts like a formula is
        # written as text (OWASP's CSV-injection advice), as in every rejects file.
        writer.writerow([*head, *(spreadsheet_safe(cell_text(v)) for v in values)])
    return buffer.getvalue()
