"""``preauth outcomes``: real outcomes of stored decisions, brought back from the loan book."""

from __future__ import annotations

from pathlib import Path

import click

from .data import report_reject_messages
from .options import database_url_option, friendly_errors, settings_from


@click.group()
def outcomes() -> None:
    """Real outcomes (repaid or defaulted) of decisions kept in the decision store."""


@outcomes.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@database_url_option()
@click.option(
    "--rejects",
    "rejects_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where rejected rows go [default: <FILE's name>.rejects.csv in the current directory].",
)
@click.pass_context
@friendly_errors
def import_outcomes(
    ctx: click.Context, file: Path, database_url: str | None, rejects_file: Path | None
) -> None:
    """Record outcomes from FILE (CSV, Parquet or JSON) with the columns decision_id, outcome
    (repaid or defaulted) and known_at (the date it became known).

    \b
    Importing the same file twice changes nothing; an outcome never overwrites a different one.
    A row with a bad value, an unknown decision id, a conflicting outcome or an outcome dated
    before the day its decision was made is rejected with its reason (exit 2); the good rows are
    recorded all the same.
    """
    from ..outcomes import import_file
    from ..rejects import write_rejects
    from ..store import DecisionStore

    settings = settings_from(ctx)
    store = DecisionStore(database_url or settings.database_url, create=False)
    try:
        store.migrate()
        done = import_file(store, file)
    finally:
        store.close()
    click.echo(
        f"preauth: {done.created} outcomes recorded, {done.unchanged} already known, "
        f"{len(done.rejects)} rejected"
    )
    if done.rejects:
        target = rejects_file or Path(file.name.split(".")[0] + ".rejects.csv")
        report_reject_messages(done.reject_messages(), write_rejects(done.rejects, str(file), target))
        ctx.exit(2)


COMMANDS: tuple[click.Command, ...] = (outcomes,)
"""The ``preauth`` subcommands this module defines (added to the group by :mod:`preauth.cli`)."""
