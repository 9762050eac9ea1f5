"""``preauth models shadow`` and ``preauth models compare``: try a challenger on live traffic, then weigh it."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from .. import bundles
from .options import database_url_option, friendly_errors, settings_from, since_until_options
from .training import models


@models.command("shadow")
@click.argument("version", required=False)
@click.option("--off", is_flag=True, help="Stop shadow scoring (removes the shadow alias).")
@click.pass_context
@friendly_errors
def shadow_model(ctx: click.Context, version: str | None, off: bool) -> None:
    """Score every request with VERSION too (vN or an alias), beside production, without acting on it.

    \b
    A running `preauth serve` picks the change up within a second, no restart: every decision it
    stores (API, batch, /invocations, the page) gets VERSION's probability and decision in the
    table shadow_scores. The answer is always production's. Weigh the two with
    `preauth models compare PRODUCTION VERSION`.

    \b
      preauth models shadow v3        # v3 scores beside production from now on
      preauth models shadow           # which version is the shadow
      preauth models shadow --off     # stop
    """
    models_dir = Path(settings_from(ctx).models_dir)
    if off:
        if version is not None:
            raise click.UsageError("give a VERSION or --off, not both")
        dropped = bundles.drop_alias(models_dir, bundles.SHADOW)
        click.echo(f"shadow scoring off (was {dropped})" if dropped else "no shadow model was set")
        return
    aliases = bundles.read_aliases(models_dir)
    if version is None:
        current = aliases.get(bundles.SHADOW)
        production = aliases.get(bundles.PRODUCTION)
        click.echo(f"shadow → {current} (production → {production})" if current else "no shadow model")
        return
    target = bundles.promote(models_dir, version, bundles.SHADOW)
    click.echo(f"shadow → {target} (scored beside production on every request, never acted on)")


@models.command("compare")
@click.argument("a")
@click.argument("b")
@since_until_options()
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option(
    "--resamples", type=click.IntRange(min=10), default=1000, show_default=True, help="Bootstrap resamples."
)
@database_url_option()
@click.pass_context
@friendly_errors
def compare_models(
    ctx: click.Context,
    a: str,
    b: str,
    since: datetime | None,
    until: datetime | None,
    output: str,
    resamples: int,
    database_url: str | None,
) -> None:
    """Compare versions A and B on the stored decisions both scored (one in production, one shadow).

    \b
    Agreement (same approve/decline/refer), the shift of B's probability from A's, a confusion
    of their decisions, and once outcomes are recorded each one's ROC AUC and cost per applicant
    (the bundle's cost matrix), with paired bootstrap 95% intervals. A and B are versions as stored
    (v1, v2); an alias (production, shadow) is read from --models-dir.

    \b
      preauth models compare v1 v2
      preauth models compare production shadow --since 2026-11-01 --format json
    """
    from ..challengers import bundle_costs, compare, comparison_lines, read_pairs, version_names
    from ..store import DecisionStore

    settings = settings_from(ctx)
    models_dir = Path(settings.models_dir)
    a, b = version_names(models_dir, a, b)
    store = DecisionStore(database_url or settings.database_url, create=False)
    try:
        store.migrate()
        pairs = read_pairs(store, a, b, since=since, until=until)
    finally:
        store.close()
    result = compare(pairs, bundle_costs(models_dir, a), resamples=resamples)
    if output == "json":
        click.echo(json.dumps(result, indent=2))
        return
    for line in comparison_lines(result):
        click.echo(line)


COMMANDS: tuple[click.Command, ...] = ()
"""No top-level subcommands: ``shadow`` and ``compare`` are added to ``preauth models`` above."""
