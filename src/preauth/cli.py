"""The ``preauth`` command: a thin layer over the library.

Each subcommand parses options, calls one library function and prints. Errors derived from
:class:`preauth.errors.PreauthError` become one line on stderr and the error's exit code; no
traceback reaches the user.
"""

from __future__ import annotations

import gc

# Importing the commands creates a few hundred thousand objects that live as long as the process;
# Python's cycle collector, triggered over and over while they are created, spent about 0.15 s of
# CPU of a 0.8 s start-up on them. It is paused for these imports and resumed at the bottom.
_COLLECTING = gc.isenabled()
gc.disable()

import functools  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any, TypeVar  # noqa: E402

import click  # noqa: E402

from .applications.german import GERMAN  # noqa: E402
from .applications.schema import Schema  # noqa: E402
from .applications.schema_file import load_schema  # noqa: E402
from .errors import PreauthError  # noqa: E402

if TYPE_CHECKING:
    from .settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_ESCAPES = {"\n": "\\n", "\r": "\\r"}


def one_line(text: str) -> str:
    """A message as one terminal line: a newline, CR or NUL from a file's value is shown escaped."""
    return _CONTROL.sub(lambda m: _ESCAPES.get(m[0], f"\\x{ord(m[0]):02x}"), text)


def friendly_errors(func: F) -> F:
    """Turn a PreauthError into ``preauth: <message>`` and its exit code; an OSError into exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PreauthError as error:
            # One line per mistake (a schema file may have several), each a complete message on
            # one terminal line.
            for line in getattr(error, "mistakes", None) or [str(error)]:
                click.echo(f"preauth: error: {one_line(line)}", err=True)
            sys.exit(error.exit_code)
        except BrokenPipeError:
            # The reader went away (`preauth ... | head`): not an error worth a line. Point stdout
            # at /dev/null so that Python's own flush at exit does not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(1)
        except OSError as error:
            # A file that cannot be read or written (a directory, no permission, a full disk): the
            # path and the system's reason, in one line. A rename names its destination second.
            path = error.filename2 or error.filename
            reason = error.strerror or str(error)
            message = f"{path}: {reason}" if path else reason
            click.echo(f"preauth: error: {one_line(message)}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def settings_from(ctx: click.Context) -> Settings:
    from .settings import Settings

    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


def schema_from(ctx: click.Context, path: Path | None = None) -> Schema:
    """The schema a command works on: ``--schema`` here, else the global one (``PREAUTH_SCHEMA``),
    else German Credit. Commands that use a model read the model's schema instead."""
    chosen = path or settings_from(ctx).schema_path
    return load_schema(chosen) if chosen is not None else GERMAN


schema_option = click.option(
    "--schema",
    "schema_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Schema file of the applications (see `preauth schema infer`) [env PREAUTH_SCHEMA; default: German Credit].",
)


DATABASE_URL_HELP = "Decision store URL [env PREAUTH_DATABASE_URL; default sqlite:///preauth.db]."


def database_url_option(help: str = DATABASE_URL_HELP) -> Callable[[F], F]:
    """``--database-url``, for every command that opens the decision store."""
    return click.option("--database-url", default=None, help=help)


def utc_moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """A click callback: an ISO 8601 date or time as an aware UTC time (no zone: UTC, a date: 00:00).

    One reading of ``--since``/``--until`` for every command, the same as the API's query strings.
    """
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"'{value[:40]}' is not an ISO 8601 date or time (2026-11-25 or 2026-11-25T10:00:00+00:00)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def since_until_options(what: str = "Decisions made") -> Callable[[F], F]:
    """``--since`` (inclusive) and ``--until`` (exclusive), read by :func:`utc_moment`."""

    def decorate(func: F) -> F:
        func = click.option(
            "--until",
            callback=utc_moment,
            help=f"{what} before this date or time (ISO 8601, exclusive; UTC if no zone).",
        )(func)
        return click.option(
            "--since",
            callback=utc_moment,
            help=f"{what} from this date or time on (ISO 8601, inclusive; UTC if no zone).",
        )(func)

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--models-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where model bundles live [env PREAUTH_MODELS_DIR; default ./models].",
)
@schema_option
@click.version_option(package_name="preauth")
@click.pass_context
def cli(ctx: click.Context, models_dir: Path | None, schema_path: Path | None) -> None:
    """preauth: score loan applications as good or bad risk, and keep every decision.

    \b
    Stages:  prepare → describe → label → train → predict
    `preauth run` chains them all on the bundled German Credit data, offline.
    """
    from .settings import Settings  # pydantic-settings: imported when a command runs, not for --help

    settings = Settings()
    if models_dir is not None:
        settings.models_dir = models_dir
    if schema_path is not None:
        settings.schema_path = schema_path
    ctx.obj = settings


def main() -> None:
    gc.freeze()  # what start-up imported stays for good: later collections need not walk it
    cli(prog_name="preauth")


# Subcommands register themselves by importing their modules below.
from . import commands as _commands  # noqa: E402,F401

if _COLLECTING:
    gc.enable()
