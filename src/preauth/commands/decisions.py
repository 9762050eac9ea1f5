"""``preauth decisions``: the decision store's decisions, with reviews and outcomes, as a file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from ..cli import cli, friendly_errors, settings_from


@cli.group()
def decisions() -> None:
    """Decisions kept in the decision store (with their reviews and outcomes)."""


def _moment(option: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"'{text[:40]}' is not an ISO 8601 time (2026-11-25T10:00:00+00:00)", param_hint=option
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@decisions.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet"]),
    default="csv",
    show_default=True,
    help="csv for spreadsheets; parquet keeps numbers and UTC times typed.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The file to write (written complete or not at all).",
)
@click.option(
    "--since", default=None, help="From this time (inclusive, ISO 8601; a date means midnight UTC)."
)
@click.option("--until", default=None, help="Before this time (exclusive, ISO 8601).")
@click.option("--target", type=click.Choice(["good risk", "bad risk"]), default=None)
@click.option("--model-version", default=None, help="Only decisions of this model version (e.g. v3).")
@click.option(
    "--database-url",
    default=None,
    help="Decision store URL [env PREAUTH_DATABASE_URL; default sqlite:///preauth.db].",
)
@click.pass_context
@friendly_errors
def export(
    ctx: click.Context,
    fmt: str,
    out: Path,
    since: str | None,
    until: str | None,
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

    chosen = Filters(_moment("--since", since), _moment("--until", until), target, model_version)
    settings = settings_from(ctx)
    store = DecisionStore(database_url or settings.database_url, create=False)
    try:
        store.migrate()
        written = export_file(store, chosen, fmt, out)  # type: ignore[arg-type]  # click.Choice checked it
    finally:
        store.close()
    click.echo(f"preauth: {written} decisions written to {out}")
