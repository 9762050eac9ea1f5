"""``preauth monitor``: drift, decision rates and live quality of a model, from the decision store."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from .options import database_url_option, friendly_errors, settings_from, since_until_options

FAIL_LEVELS = {"watch": ("watch", "act"), "act": ("act",)}


@click.command()
@since_until_options("Decisions made")
@click.option(
    "--model",
    "model_ref",
    default=None,
    help="Whose decisions: a version (v3) or alias of --models-dir [default: production, else the latest].",
)
@click.option(
    "--every",
    type=click.Choice(["day", "week"]),
    default="day",
    show_default=True,
    help="Period of the rates.",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, or the JSON that GET /v1/monitoring answers.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["watch", "act"]),
    default=None,
    help="Exit 1 when any input's or the score's PSI is at this flag or worse (for cron and CI).",
)
@database_url_option()
@click.pass_context
@friendly_errors
def monitor(
    ctx: click.Context,
    since: datetime | None,
    until: datetime | None,
    model_ref: str | None,
    every: str,
    output: str,
    fail_on: str | None,
    database_url: str | None,
) -> None:
    """How a model's live decisions compare with its training data, and how it is doing.

    \b
    For the decisions one model made (in the window --since .. --until):
    * PSI (population stability index) of every input and of the score against the training
      reference kept in the model's bundle: below 0.1 ok, 0.1 watch, 0.25 or more act;
    * approve, decline and refer rates per day or week;
    * once outcomes are recorded (`preauth outcomes import`): live AUC with a 95% bootstrap
      interval, calibration (mean predicted vs observed default rate, ECE), and approval vs
      default rate by score band.
    Exit status: 0, or 1 with --fail-on when a PSI reaches that flag; 2 for a bad option.
    """
    from .. import bundles
    from ..monitoring import monitor as build_report
    from ..store import DecisionStore

    settings = settings_from(ctx)
    bundle_dir = bundles.resolve(settings.models_dir, model_ref)
    store = DecisionStore(database_url or settings.database_url, create=False)
    try:
        store.migrate()
        report = build_report(store, bundle_dir, since=since, until=until, every=every)  # type: ignore[arg-type]
    finally:
        store.close()
    if output == "json":
        click.echo(json.dumps(report, indent=2))
    else:
        print_report(report)
    if fail_on is not None and report["worst"] in FAIL_LEVELS[fail_on]:
        ctx.exit(1)


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console

    console = Console()
    window = f"{report['since'] or 'the first decision'} to {report['until'] or 'now'}"
    console.print(f"[bold]model {report['model_version']}[/]: {report['decisions']} decisions, {window}")
    for note in report["notes"]:
        console.print(f"preauth: {note}")
    if not report["decisions"]:
        return
    console.print(
        f"approve {_pct(report['approve_rate'])}, decline {_pct(report['decline_rate'])}, "
        f"refer {_pct(report['refer_rate'])}"
    )
    if report["reference"]:
        console.print(drift_table(report))
    console.print(periods_table(report))
    if report["live"]:
        for table in live_tables(report["live"]):
            console.print(table)
    else:
        console.print("No outcomes recorded for these decisions yet: no live AUC or calibration.")


def drift_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(
        title=f"Drift against the training reference ({report['reference']['source']})",
        title_justify="left",
        caption="PSI: below 0.1 ok, 0.1 watch, 0.25 or more act",
    )
    for name, justify in (("Input", "left"), ("PSI", "right"), ("Flag", "left"), ("Largest move", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    rows = [*report["inputs"], {"feature": "score (P(bad risk))", **(report["score"] or {})}]
    for item in rows:
        table.add_row(item["feature"], _num(item.get("psi")), _flagged(item.get("flag")), _largest_move(item))
    return table


def periods_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"Decisions per {report['every']}", title_justify="left")
    for name in ("Period (UTC)", "Decisions", "Approve", "Decline", "Refer", "Score PSI"):
        table.add_column(name, justify="left" if name.startswith("Period") else "right")
    for period in report["periods"]:
        table.add_row(
            period["start"][:10],
            str(period["decisions"]),
            _pct(period["approve_rate"]),
            _pct(period["decline_rate"]),
            _pct(period["refer_rate"]),
            _num(period["score_psi"]),
        )
    return table


def live_tables(live: dict[str, Any]) -> list[Any]:
    from rich.table import Table

    calibration = live["calibration"]
    interval = live["auc_interval"]
    summary = Table(
        title=f"Live quality: {live['outcomes']} outcomes, {live['defaulted']} defaulted",
        title_justify="left",
    )
    summary.add_column("Measure")
    summary.add_column("Value", justify="right")
    auc = _num(live["auc"]) + (f" ({_num(interval[0])}–{_num(interval[1])})" if interval else "")
    summary.add_row("AUC (95% interval)", auc)
    summary.add_row("Mean P(bad risk)", _pct(calibration["mean_predicted"]))
    summary.add_row("Observed default rate", _pct(calibration["observed_default_rate"]))
    summary.add_row("ECE", _num(calibration["ece"]))
    summary.add_row(
        "ECE by chance alone (mean; 95%)",
        f"{_num(calibration.get('ece_chance'))}; ≤ {_num(calibration.get('ece_chance_upper'))}",
    )
    bands = Table(title="Approval vs default by score band", title_justify="left")
    for name in ("P(bad risk)", "Decisions", "Approved", "Outcomes", "Defaulted"):
        bands.add_column(name, justify="left" if name.startswith("P(") else "right")
    for band in live["bands"]:
        bands.add_row(
            band["band"],
            str(band["decisions"]),
            _pct(band["approval_rate"]),
            str(band["outcomes"]),
            _pct(band["default_rate"]),
        )
    return [summary, bands]


def _largest_move(item: dict[str, Any]) -> str:
    bins = item.get("bins") or []
    if not bins:
        return "–"
    top = max(bins, key=lambda b: abs(b["live"] - b["reference"]))
    return f"{top['bin']}: {_pct(top['reference'])} → {_pct(top['live'])}"


def _flagged(value: str | None) -> str:
    return {"act": "[bold red]act[/]", "watch": "[yellow]watch[/]", "ok": "ok"}.get(value or "", "–")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


COMMANDS: tuple[click.Command, ...] = (monitor,)
"""The ``preauth`` subcommands this module defines (added to the group by :mod:`preauth.cli`)."""
