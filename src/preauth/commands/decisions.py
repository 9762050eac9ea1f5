"""``preauth decisions``: the decision store's decisions, with reviews and outcomes, as a file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from .options import database_url_option, friendly_errors, settings_from, since_until_options


@click.group()
def decisions() -> None:
    """Decisions kept in the decision store (with their reviews and outcomes)."""


@decisions.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet"]),
    default=None,
    help="csv for spreadsheets; parquet keeps numbers and UTC times typed [default: from --out's "
    "name (.parquet), else csv].",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The file to write (written complete or not at all).",
)
@since_until_options()
@click.option("--target", type=click.Choice(["good risk", "bad risk"]), default=None)
@click.option("--model-version", default=None, help="Only decisions of this model version (e.g. v3).")
@database_url_option()
@click.pass_context
@friendly_errors
def export(
    ctx: click.Context,
    fmt: str | None,
    out: Path,
    since: datetime | None,
    until: datetime | None,
    target: str | None,
    model_version: str | None,
    database_url: str | None,
) -> None:
    """Write stored decisions, with their reviews and outcomes, to a CSV or Parquet file.

    The same columns and filters as GET /v1/decisions/export (newest first): the model's decision,
    the reviewer's decision, name, reason and time, and the real outcome. CSV cells that a
    spreadsheet would run as formulas are written as text.

    \b
    Examples:
      preauth decisions export --out decisions.csv
      preauth decisions export --format parquet --out q3.parquet --since 2026-07-01 --until 2026-10-01
    """
    from ..exports import Filters, export_file
    from ..store import DecisionStore

    fmt = _format_for(fmt, out)

    chosen = Filters(since, until, target, model_version)
    settings = settings_from(ctx)
    store = DecisionStore(database_url or settings.database_url, create=False)
    try:
        store.migrate()
        written = export_file(store, chosen, fmt, out)  # type: ignore[arg-type]  # click.Choice checked it
    finally:
        store.close()
    click.echo(f"preauth: {written} decisions written to {out}")


SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _format_for(fmt: str | None, out: Path) -> str:
    """The export's format: as asked, else as the file's name says, else CSV. Asked for one and
    named for the other (``--format parquet --out x.csv``) is refused: it wrote Parquet bytes into
    a ``.csv`` a spreadsheet then opened as garbage."""
    named = SUFFIXES.get(out.suffix.lower())
    if fmt is not None and named is not None and named != fmt:
        raise click.UsageError(f"--format {fmt} but --out {out.name} names a {named} file; make them agree")
    return fmt or named or "csv"


COMMANDS: tuple[click.Command, ...] = (decisions,)
"""The ``preauth`` subcommands this module defines (added to the group by :mod:`preauth.cli`)."""
