"""What the ``preauth`` subcommands share: their error handling, settings and common options.

Kept apart from :mod:`preauth.cli` (the group and its entry point), so that a command module
imports what it uses without importing the group that lists it: ``cli`` imports the commands,
never the other way round.
"""

from __future__ import annotations

import functools
import math
import os
import re
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from ..applications.german import GERMAN
from ..applications.schema import Schema
from ..applications.schema_file import load_schema
from ..errors import PreauthError

if TYPE_CHECKING:
    from ..settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_ESCAPES = {"\n": "\\n", "\r": "\\r"}


def one_line(text: str) -> str:
    """A message as one terminal line: a newline, CR or NUL from a file's value is shown escaped."""
    return _CONTROL.sub(lambda m: _ESCAPES.get(m[0], f"\\x{ord(m[0]):02x}"), text)


class NumberRange(click.FloatRange):
    """click's FloatRange without NaN: ``nan`` compares false with both bounds, so click let it
    through every range (``--timeout nan``, ``--temperature nan``, ``--threshold nan``)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if isinstance(number, float) and math.isnan(number):
            self.fail("nan is not a number", param, ctx)
        return number


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
    from ..settings import Settings

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
    from ..store import as_utc  # not at import: every command reads this module, few open a store

    try:
        return as_utc(moment)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def since_until_options(what: str = "Decisions made") -> Callable[[F], F]:
    """``--since`` (inclusive) and ``--until`` (exclusive), read by :func:`utc_moment`."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def checked(*args: Any, **kwargs: Any) -> Any:
            since, until = kwargs.get("since"), kwargs.get("until")
            if since is not None and until is not None and until <= since:
                # swapped, the two would make an empty window: "0 decisions", as if none were made
                raise click.BadParameter(
                    f"{until.isoformat()} is not after --since ({since.isoformat()})", param_hint="'--until'"
                )
            return command(*args, **kwargs)

        func = cast(F, checked)
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
