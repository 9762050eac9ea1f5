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

from pathlib import Path  # noqa: E402

import click  # noqa: E402

from .commands import (  # noqa: E402
    challengers,
    data,
    decisions,
    labels,
    monitoring,
    options,
    outcomes,
    report,
    schema,
    service,
    training,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--models-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where model bundles live [env PREAUTH_MODELS_DIR; default ./models].",
)
@options.schema_option
@click.version_option(package_name="preauth")
@click.pass_context
@options.friendly_errors  # a bad PREAUTH_* value: one line, before any command runs
def cli(ctx: click.Context, models_dir: Path | None, schema_path: Path | None) -> None:
    """preauth: score loan applications as good or bad risk, and keep every decision.

    \b
    Stages:  prepare → describe → label → train → predict
    `preauth run` chains them all on the bundled German Credit data, offline.
    """
    from .settings import Settings  # pydantic-settings: imported when a command runs, not for --help

    settings = Settings.from_environment()
    if models_dir is not None:
        settings.models_dir = models_dir
    if schema_path is not None:
        settings.schema_path = schema_path
    ctx.obj = settings


def main() -> None:
    gc.freeze()  # what start-up imported stays for good: later collections need not walk it
    cli(prog_name="preauth")


for _module in (
    data,
    labels,
    training,
    schema,
    report,
    service,
    decisions,
    outcomes,
    monitoring,
    challengers,
):
    for _command in _module.COMMANDS:
        cli.add_command(_command)

if _COLLECTING:
    gc.enable()
