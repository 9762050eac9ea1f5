"""The ``preauth`` command: a thin layer over the library.

Each subcommand parses options, calls one library function and prints. Errors derived from
:class:`preauth.errors.PreauthError` become one line on stderr and the error's exit code; no
traceback reaches the user.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .errors import PreauthError

if TYPE_CHECKING:
    from .settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn a PreauthError into ``preauth: <message>`` and its exit code; an OSError into exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PreauthError as error:
            click.echo(f"preauth: error: {error}", err=True)
            sys.exit(error.exit_code)
        except OSError as error:
            # A file that cannot be read or written (a directory, no permission, a full disk): the
            # path and the system's reason, in one line. A rename names its destination second.
            path = error.filename2 or error.filename
            reason = error.strerror or str(error)
            click.echo(f"preauth: error: {path}: {reason}" if path else f"preauth: error: {reason}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def settings_from(ctx: click.Context) -> Settings:
    from .settings import Settings

    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--models-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where model bundles live [env PREAUTH_MODELS_DIR; default ./models].",
)
@click.version_option(package_name="preauth")
@click.pass_context
def cli(ctx: click.Context, models_dir: Path | None) -> None:
    """preauth: score loan applications as good or bad risk, and keep every decision.

    \b
    Stages:  prepare → describe → label → train → predict
    `preauth run` chains them all on the bundled German Credit data, offline.
    """
    from .settings import Settings  # pydantic-settings: imported when a command runs, not for --help

    settings = Settings()
    if models_dir is not None:
        settings.models_dir = models_dir
    ctx.obj = settings


def main() -> None:
    cli(prog_name="preauth")


# Subcommands register themselves by importing their modules below.
from . import commands as _commands  # noqa: E402,F401
