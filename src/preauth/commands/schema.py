"""``preauth schema``: propose a schema for a lender's file, and check a file against a schema."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..applications import read_table, validate
from ..applications.inference import infer_schema, proposal_text
from ..files import write_text_atomic
from .options import friendly_errors, schema_from, schema_option


@click.group("schema")
def schema_group() -> None:
    """Schemas: what the columns of an applications file are (German Credit by default)."""


@schema_group.command("infer")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--target", default=None, metavar="COL", help="The column holding the real outcome, if any.")
@click.option(
    "--bad", default=None, metavar="VALUE", help="The target value that means bad risk (e.g. 2, yes, bad)."
)
@click.option("--name", default=None, help="The schema's name [default: the file's name].")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("schema.toml"),
    show_default=True,
    help="The schema file to write.",
)
@friendly_errors
def infer(source: Path, target: str | None, bad: str | None, name: str | None, output: Path) -> None:
    """Propose a schema for SOURCE (CSV, Parquet, JSON): kinds, categories, ranges, id, target.

    The proposal marks with comments what the data cannot say (what a missing value means,
    protected attributes): read it, edit it, then `preauth schema check SOURCE --schema OUTPUT`.

    \b
    Example:  preauth schema infer credit.csv --target Status --bad 2 -o credit.toml
    """
    from ..applications.schema import Schema

    table = read_table(source, Schema("", ()))
    proposal = infer_schema(table, source=str(source), target=target, bad=bad, name=name)
    write_text_atomic(output, proposal_text(proposal))
    schema = proposal.schema
    click.echo(
        f"{len(schema.fields)} fields"
        + (f", target '{schema.target.column}'" if schema.target else ", no target")
        + (f", id '{schema.id_column}'" if schema.id_column != "id" else "")
        + f" → {output}"
    )
    for column in proposal.skipped:
        click.echo(f"preauth: note: column '{column}' left out (see the comments in {output})", err=True)


@schema_group.command("check")
@click.argument("source", type=click.Path(path_type=Path))
@schema_option
@click.pass_context
@friendly_errors
def check(ctx: click.Context, source: Path, schema_path: Path | None) -> None:
    """Check SOURCE against a schema: one line per row and column that does not fit (exit 2).

    \b
    Example:  preauth schema check credit.csv --schema credit.toml
    """
    schema = schema_from(ctx, schema_path)
    table = read_table(source, schema)
    applications = validate(table, source=str(source), schema=schema)
    known = set(applications.columns.values())
    for column in table.columns:
        if str(column) not in known and not schema.is_id_column(
            str(column), list(table.columns).index(column)
        ):
            click.echo(f"preauth: note: {source}: column '{column}' is not in the schema (ignored)", err=True)
    messages = applications.reject_messages()
    for message in messages:
        click.echo(f"preauth: rejected: {message}", err=True)
    click.echo(f"{len(applications)} of {len(table)} rows fit the schema '{schema.name}'")
    if messages:
        sys.exit(2)


COMMANDS: tuple[click.Command, ...] = (schema_group,)
"""The ``preauth`` subcommands this module defines (added to the group by :mod:`preauth.cli`)."""
