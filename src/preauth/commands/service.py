"""``preauth serve``: run the scoring service (SageMaker contract, JSON API, decision store)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigurationError
from .options import database_url_option, friendly_errors, settings_from


def log_config(level: str = "INFO") -> dict[str, Any]:
    """Logging for uvicorn and preauth: one JSON object per line on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": "preauth.service.logs.JsonFormatter"},
            "raw": {"format": "%(message)s"},
        },
        "handlers": {
            "json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "raw": {"class": "logging.StreamHandler", "formatter": "raw", "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["json"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "preauth.service": {"handlers": ["json"], "level": level, "propagate": False},
            "preauth.access": {"handlers": ["raw"], "level": level, "propagate": False},
        },
    }


@click.command()
@click.option(
    "--model",
    "model",
    default=None,
    help="Version, alias or bundle path to serve [default: production, else latest].",
)
@click.option("--host", default=None, help="Address to listen on [env PREAUTH_HOST; default 127.0.0.1].")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port [env SAGEMAKER_BIND_TO_PORT or PREAUTH_PORT; default 8080].",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes [default 1; one per core is a good start].",
)
@database_url_option()
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="One JSON line per request on stderr.",
)
@click.pass_context
@friendly_errors
def serve(
    ctx: click.Context,
    model: str | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    database_url: str | None,
    access_log: bool,
) -> None:
    """Serve the model over HTTP: SageMaker's /ping and /invocations, the /v1 JSON API, /metrics.

    \b
    Every decision is stored (SQLite file by default, PostgreSQL with
    PREAUTH_DATABASE_URL=postgresql+psycopg://...) and committed before it is answered.
    API keys: PREAUTH_API_KEYS=key1,key2 (clients send Authorization: Bearer KEY).
    The model comes from /opt/ml/model when it exists (SageMaker), else from the models
    directory; `preauth models promote` takes effect within a second, without a restart.
    OpenAPI documentation at /docs.
    """
    import uvicorn

    from ..service.serving import model_source
    from ..store import DecisionStore

    settings = settings_from(ctx)
    if model is not None:
        settings.serve_model = model
    if database_url is not None:
        settings.database_url = database_url
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    # One BLAS/OpenMP thread per worker: requests bring the parallelism, threads only contend.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    settings.named_api_keys()  # two keys with one name (or one key twice): refused before anything starts
    _check_address(host, port)
    source = model_source(settings)  # fail here, once, with a clear message when there is no model
    DecisionStore(settings.database_url).migrate()  # once, before the workers start
    click.echo(
        f"preauth: serving model {source.current.version} on http://{host}:{port} "
        f"({workers} worker{'s' if workers > 1 else ''}); decisions in {_redacted(settings.database_url)}",
        err=True,
    )
    config = log_config()
    if not access_log:
        config["loggers"]["preauth.access"]["level"] = "WARNING"
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": config,
        "access_log": False,
        "loop": "uvloop",
        "http": "httptools",
        "server_header": False,
        "timeout_graceful_shutdown": 10,
    }
    if workers == 1:
        from ..service.app import create_app

        uvicorn.run(create_app(settings, source=source), **common)
        return
    metrics_dir = Path(tempfile.mkdtemp(prefix="preauth-metrics-"))
    # Worker processes build their Settings from the environment: hand them this command's choices.
    os.environ.update(
        {
            "PREAUTH_MODELS_DIR": str(settings.models_dir),
            "PREAUTH_DATABASE_URL": settings.database_url,
            "PREAUTH_METRICS_DIR": str(metrics_dir),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
    )
    if settings.serve_model:
        os.environ["PREAUTH_SERVE_MODEL"] = settings.serve_model
    try:
        uvicorn.run("preauth.service.app:app_from_environment", factory=True, workers=workers, **common)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _check_address(host: str, port: int) -> None:
    """Refuse, in one line and before the model loads, an address the server could not listen on
    (an unknown host name, a port in use or not ours): uvicorn would log it as JSON and exit 3."""
    import socket

    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigurationError(f"cannot listen on {host}:{port}: {reason}") from None


def _redacted(url: str) -> str:
    """The URL without its password, for printing."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the configured database"


COMMANDS: tuple[click.Command, ...] = (serve,)
"""The ``preauth`` subcommands this module defines (added to the group by :mod:`preauth.cli`)."""
