"""``preauth report``: open a model's evaluation report, building it first when needed."""

from __future__ import annotations

import webbrowser

import click

from .. import bundles
from .options import friendly_errors, settings_from


@click.command()
@click.argument("version", required=False)
@click.option("--open/--no-open", "open_", default=True, show_default=True, help="Open it in a web browser.")
@click.option("--rebuild", is_flag=True, help="Build report.html again from the bundle's holdout and trials.")
@click.pass_context
@friendly_errors
def report(ctx: click.Context, version: str | None, open_: bool, rebuild: bool) -> None:
    """Open the evaluation report of model VERSION (a version, an alias, or a bundle path).

    \b
    Without VERSION: the production model, else the latest. The report is a single
    HTML file in the bundle (models/VERSION/report.html) that opens without network:
    ROC/PR, calibration, cost and F1 by threshold, feature effects, fairness by Sex and
    age band, label provenance and the hyperparameter search. Training writes it; it is
    built here when missing or with --rebuild.

    \b
    Example:  preauth report v3 --rebuild --no-open
    """
    from ..report import REPORT_FILE, write_report

    settings = settings_from(ctx)
    path = bundles.resolve(settings.models_dir, version)
    target = path / REPORT_FILE
    if rebuild or not target.exists():
        target = write_report(path)
        click.echo(f"built {target}")
    else:
        click.echo(str(target))
    if open_ and not webbrowser.open(target.resolve().as_uri()):
        click.echo("no web browser found here; open the file above in one", err=True)


COMMANDS: tuple[click.Command, ...] = (report,)
"""The ``preauth`` subcommands this module defines (added to the group by :mod:`preauth.cli`)."""
