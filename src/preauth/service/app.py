"""The service factory: one FastAPI app with the SageMaker contract, the JSON API and the page.

``create_app(settings)`` loads the model (``/opt/ml/model`` when present, else the models
directory's ``production`` alias or latest version), opens the decision store and brings its schema
up to date, and wires the routes. Everything a route needs hangs off ``app.state.runtime``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline

from ..settings import Settings
from ..store import DecisionStore, StoreUnavailable
from .monitoring_gauges import MonitoringGauges, refresh_gauges
from .observability import Telemetry
from .routes import challengers, decisions, metrics, model, monitoring, outcomes, reviews, sagemaker
from .runtime import Runtime, store_writer
from .schemas import follow_schema
from .security import FrontDoor, error_body, install_error_handlers, json_response
from .serving import Decider, ModelSource, model_source

log = logging.getLogger("preauth.service")
DEFAULT_PUBLIC = ("/", "/static/", "/favicon.ico")

DESCRIPTION = """
Scores credit applications as **good risk** or **bad risk** with a probability, a confidence and
up to four principal reasons (XGBoost TreeSHAP contributions), and stores every decision before
answering.

* `POST /invocations` and `GET /ping` follow SageMaker's inference contract (boto3
  `sagemaker-runtime` works by pointing `endpoint_url` here).
* `/v1/decisions` is the JSON API: decide one application or a batch, list and fetch decisions.
* Authentication, when the server has keys: `Authorization: Bearer KEY` or `X-API-Key: KEY`.
"""


def create_app(
    settings: Settings | None = None,
    *,
    source: ModelSource | None = None,
    store: DecisionStore | None = None,
    reload_interval: float = 1.0,
) -> FastAPI:
    """Build the app; raises :class:`preauth.errors.ModelBundleError` when there is no model to serve."""
    settings = settings or Settings.from_environment()
    source = source or model_source(settings)
    store = store or DecisionStore(settings.database_url)
    store.migrate()
    telemetry = Telemetry(settings.metrics_dir)
    telemetry.serving(source.current.version)
    gauges = MonitoringGauges(telemetry)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = Runtime(
            settings, source, store, store_writer(store), telemetry, Decider(source, telemetry)
        )
        chores = [
            asyncio.create_task(_follow_promotions(source, telemetry, reload_interval)),
            asyncio.create_task(_checkpoints(store)),
            asyncio.create_task(
                refresh_gauges(
                    gauges, store, source, settings.monitor_interval_seconds, settings.monitor_window_days
                )
            ),
        ]
        try:
            yield
        finally:
            for chore in chores:
                chore.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await chore
            store.checkpoint()
            store.close()

    # Swagger UI and ReDoc from the package's own copies: the docs work with no network, like the page.
    app = FastAPIOffline(
        title="preauth",
        version=_package_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "SageMaker contract", "description": "The original endpoint's contract."},
            {"name": "Decisions", "description": "Decide, list and fetch stored decisions."},
            {
                "name": "Outcomes",
                "description": "What happened to decided applications: repaid or defaulted.",
            },
            {
                "name": "Reviews",
                "description": "Referred decisions waiting for a person, and the person's decision.",
            },
            {"name": "Model", "description": "The model being served."},
            {"name": "Operations", "description": "Health and metrics."},
        ],
    )
    install_error_handlers(app)

    @app.exception_handler(StoreUnavailable)
    async def _store_unavailable(request: Request, error: StoreUnavailable) -> Response:
        return json_response(503, error_body(503, str(error)), {"Retry-After": "1"})

    for module in (sagemaker, decisions, outcomes, reviews, model, monitoring, metrics, challengers):
        app.include_router(module.router)
    follow_schema(app, lambda: source.current.bundle.schema)
    public = _mount_page(app)
    app.add_middleware(
        FrontDoor,  # type: ignore[arg-type]
        api_keys=settings.named_api_keys(),
        max_body_bytes=settings.max_body_bytes,
        public_prefixes=public,
        telemetry=telemetry,
    )
    return app


def _package_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("preauth")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def _mount_page(app: FastAPI) -> tuple[str, ...]:
    """Mount the web page's router (``preauth.service.page``) at ``/`` when it is installed.

    Its HTML shell and assets carry no data and stay reachable without a key (the page asks for
    one and sends it with its API calls); a page module may name them in ``PUBLIC_PATHS``.
    """
    try:
        page: Any = importlib.import_module("preauth.service.page")
    except ModuleNotFoundError as error:
        if error.name != "preauth.service.page":
            raise
        return ()
    app.include_router(page.router)
    return tuple(getattr(page, "PUBLIC_PATHS", DEFAULT_PUBLIC))


async def _checkpoints(store: DecisionStore, interval: float = 1.0) -> None:
    """Fold SQLite's write-ahead log into the database once a second, off the request path."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(store.checkpoint)
        except Exception:
            log.exception("checkpointing the decision store failed")


async def _follow_promotions(source: ModelSource, telemetry: Telemetry, interval: float) -> None:
    """Check the alias file once per ``interval``; swap the model when it moved."""
    while True:
        await asyncio.sleep(interval)
        try:
            if await asyncio.to_thread(source.refresh):
                telemetry.serving(source.current.version)
        except Exception:  # never let the watcher die: the next tick tries again
            log.exception("checking for a promoted model failed")


def app_from_environment() -> FastAPI:
    """Factory for worker processes (``preauth serve --workers N``): settings from the environment."""
    return create_app(Settings.from_environment())
