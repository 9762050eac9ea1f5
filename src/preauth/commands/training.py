"""``preauth train`` and ``preauth models``: fit a model from labels, and manage the bundles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .. import bundles
from ..cli import cli, friendly_errors, settings_from
from ..errors import ModelBundleError
from ..evaluation import metrics_table, summary_rows
from ..training import TrainingConfig, TrainingResult, train_from_file

_DEFAULTS = TrainingConfig()


@cli.command()
@click.argument("labels", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--target",
    type=click.Choice(["llm", "risk"]),
    default=_DEFAULTS.target,
    show_default=True,
    help="Train on the provider's labels (the 'target' column) or on the real outcome (the 'Risk' column).",
)
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=_DEFAULTS.trials,
    show_default=True,
    help="Optuna trials in the hyperparameter search.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop the search after this many seconds (the trials finished so far count).",
)
@click.option(
    "--seed",
    type=int,
    default=_DEFAULTS.seed,
    show_default=True,
    help="Seeds the holdout split, the folds, the sampler and XGBoost: same seed, same model.",
)
@click.option(
    "--folds",
    type=click.IntRange(min=2),
    default=_DEFAULTS.folds,
    show_default=True,
    help="Stratified cross-validation folds in the search.",
)
@click.option(
    "--holdout",
    "holdout_fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=_DEFAULTS.holdout_fraction,
    show_default=True,
    help="Share of labeled rows set aside before the search and used only for the final evaluation.",
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="COL",
    help="Leave a column out of the model's inputs (repeatable). Sex is always left out unless included.",
)
@click.option(
    "--include",
    multiple=True,
    metavar="COL",
    help="Bring a default-excluded column back into the model, e.g. --include Sex.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Decision threshold on p(bad risk); by default the lowest expected cost on validation data.",
)
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Show the search progress bar."
)
@click.option(
    "--study-storage",
    metavar="URL",
    default=None,
    help="Keep the search's Optuna study in PostgreSQL (postgresql+psycopg://user@host/db) so that "
    "several processes can tune it; --trials is then the study's total.",
)
@click.option("--study-name", default=None, help="Name the shared study; this process makes the bundle.")
@click.option(
    "--join-study",
    metavar="NAME",
    default=None,
    help="Add trials to the named shared study, then stop (its --study-name process makes the bundle).",
)
@click.pass_context
@friendly_errors
def train(
    ctx: click.Context,
    labels: Path,
    target: str,
    trials: int,
    timeout: float | None,
    seed: int,
    folds: int,
    holdout_fraction: float,
    exclude: tuple[str, ...],
    include: tuple[str, ...],
    threshold: float | None,
    progress: bool,
    study_storage: str | None,
    study_name: str | None,
    join_study: str | None,
) -> None:
    """Train a bad-risk classifier on LABELS and write a new model bundle.

    LABELS is a file from `preauth label` (application columns plus `target` = good risk / bad
    risk), any file with such a `target` column (e.g. the original pipeline's
    credit_data_with_targets.csv), or, with --target risk, applications with a `Risk` column.
    Rows with an empty target are left out and counted.

    \b
    What happens:
      1. a stratified holdout (20%) is set aside;
      2. Optuna's TPE sampler tunes XGBoost for ROC AUC under stratified k-fold CV on the rest,
         with early stopping, pruning, and scale_pos_weight around negatives/positives
         (bad risk is the positive class);
      3. the threshold minimizing expected cost is chosen on out-of-fold predictions
         (approving a bad applicant costs 5, refusing a good one 1);
      4. the model is refit and evaluated once on the holdout, against the labels it learned
         and, when the file has Risk, against the real outcome too.

    \b
    The bundle goes to <models-dir>/vN/ (global --models-dir, default ./models).
    Examples:
      preauth train work/labels.csv
      preauth train data.csv --target risk --trials 50 --seed 7
      preauth --models-dir out/models train labels.csv --exclude Age --threshold 0.3
      preauth train labels.csv --trials 200 --study-storage postgresql+psycopg://u@db/optuna --study-name s1
      preauth train labels.csv --trials 200 --study-storage postgresql+psycopg://u@db/optuna --join-study s1
    """
    settings = settings_from(ctx)
    config = TrainingConfig(
        trials=trials,
        timeout=timeout,
        seed=seed,
        folds=folds,
        holdout_fraction=holdout_fraction,
        target="risk" if target == "risk" else "llm",
        exclude=exclude,
        include=include,
        threshold=threshold,
    )
    if study_storage is None:
        if study_name or join_study:
            raise click.UsageError("--study-name and --join-study need --study-storage")
        result = train_from_file(labels, config, Path(settings.models_dir), progress=progress)
        print_training_result(result, Console())
        return
    from ..training.shared_study import StudyJoined, shared_study

    if bool(study_name) == bool(join_study):
        raise click.UsageError("with --study-storage, give either --study-name or --join-study")
    name = study_name or join_study or ""
    with shared_study(study_storage, name, joining=join_study is not None):
        try:
            result = train_from_file(labels, config, Path(settings.models_dir), progress=progress)
        except StudyJoined as joined:
            click.echo(f"study '{name}': this process {joined}; the study's owner makes the bundle")
            return
    print_training_result(result, Console())


def print_training_result(result: TrainingResult, console: Console) -> None:
    """The summary a person reads after `train` (also used by `preauth run`)."""
    counts = result.label_counts
    console.print(
        f"Labels: {result.provenance['source']}: {counts['rows']} rows, {counts['used']} used "
        f"({counts['bad_risk']} bad risk, {counts['good_risk']} good risk), "
        f"{counts['unlabeled']} unlabeled, {counts['rejected']} rejected",
        highlight=False,
        soft_wrap=True,
    )
    for message in result.rejects[:5]:
        console.print(f"  rejected: {message}", style="yellow", highlight=False, soft_wrap=True)
    if len(result.rejects) > 5:
        console.print(f"  … and {len(result.rejects) - 5} more rejected rows", style="yellow")
    agree = result.provenance.get("agreement_with_risk")
    if agree and agree.get("accuracy") is not None:
        kappa = agree["cohen_kappa"]
        kappa_text = f"{kappa:.3f}" if kappa is not None else "n/a"
        console.print(
            f"Labels vs real outcome (Risk): accuracy {agree['accuracy']:.3f}, Cohen's kappa {kappa_text} "
            f"(majority class alone: {agree['majority_baseline']:.3f})",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"Features: {', '.join(result.features)}", highlight=False, soft_wrap=True)

    metrics = result.metrics
    columns = {f"vs {metrics['measured_against']}": metrics["holdout"]}
    if metrics.get("against_risk"):
        columns[f"vs {metrics['against_risk']['measured_against']}"] = metrics["against_risk"]
    console.print(metrics_table(columns, title=f"Holdout evaluation ({metrics['holdout']['n']} rows)"))

    gap = Table(title="Overfitting check", title_justify="left", show_header=False)
    gap.add_column("what")
    gap.add_column("AUC", justify="right")
    for name, value in summary_rows(metrics):
        gap.add_row(name, value)
    console.print(gap)

    search = result.search
    console.print(
        f"Search: {search['n_trials']} trials ({search['n_pruned']} pruned) in {search['duration_s']:.1f}s; "
        f"best trial #{search['best_trial']} CV AUC {search['best_value']:.3f}, "
        f"{search['n_rounds']} rounds, scale_pos_weight {search['best_params']['scale_pos_weight']:.2f} "
        f"(negatives/positives = {search['scale_pos_weight_ratio']:.2f})",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"Threshold: {result.threshold:.3f} (p(bad risk) ≥ threshold → refuse)",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"Model bundle: {result.bundle_path} (version [bold]{result.version}[/]); "
        f"trained in {result.duration_s:.1f}s",
        highlight=False,
        soft_wrap=True,
    )
    if result.report_path is not None:
        console.print(f"Report: {result.report_path}", highlight=False, soft_wrap=True)
    console.print(f"Serve it with: preauth models promote {result.version}", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------------------------
# preauth models


@cli.group()
def models() -> None:
    """List, inspect and promote model bundles (in the global --models-dir, default ./models)."""


def _metric(meta: dict[str, Any], *keys: str) -> str:
    value: Any = meta.get("metrics") or {}
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return f"{value:.3f}" if isinstance(value, (int, float)) else "–"


@models.command("list")
@click.pass_context
@friendly_errors
def list_models(ctx: click.Context) -> None:
    """Every bundle with its creation time, labels, holdout AUC and aliases."""
    models_dir = Path(settings_from(ctx).models_dir)
    versions = bundles.list_versions(models_dir)
    if not versions:
        click.echo(f"no models in {models_dir}: run `preauth train` first")
        return
    aliases: dict[str, list[str]] = {}
    for alias, version in bundles.read_aliases(models_dir).items():
        aliases.setdefault(version, []).append(alias)
    table = Table(title=f"Models in {models_dir}", title_justify="left")
    for heading in ("version", "created", "target", "holdout AUC", "AUC vs Risk", "threshold", "aliases"):
        table.add_column(heading, justify="right" if "AUC" in heading or heading == "threshold" else "left")
    for version in versions:
        try:
            meta = bundles.read_meta(models_dir / version)
        except ModelBundleError as error:
            table.add_row(
                version, "–", f"[red]{error}[/]", "–", "–", "–", ", ".join(aliases.get(version, []))
            )
            continue
        table.add_row(
            version,
            str(meta.get("created_at", ""))[:19].replace("T", " "),
            str((meta.get("metrics") or {}).get("measured_against", meta.get("target", "–"))),
            _metric(meta, "holdout", "roc_auc"),
            _metric(meta, "against_risk", "roc_auc"),
            f"{float(meta.get('threshold', 0)):.3f}",
            ", ".join(aliases.get(version, [])),
        )
    Console().print(table)


@models.command("show")
@click.argument("version", required=False)
@click.pass_context
@friendly_errors
def show_model(ctx: click.Context, version: str | None) -> None:
    """Print a bundle's metadata as JSON (VERSION: vN or an alias; default production, else latest)."""
    path = bundles.resolve(Path(settings_from(ctx).models_dir), version)
    meta = bundles.read_meta(path)
    meta["files"] = sorted(p.name for p in path.iterdir() if p.is_file())
    click.echo(json.dumps(meta, indent=2))


@models.command("promote")
@click.argument("version")
@click.option("--alias", default=bundles.PRODUCTION, show_default=True, help="The alias to point at VERSION.")
@click.pass_context
@friendly_errors
def promote_model(ctx: click.Context, version: str, alias: str) -> None:
    """Point the production alias at VERSION, after checking that the bundle loads."""
    models_dir = Path(settings_from(ctx).models_dir)
    bundles.load_bundle(models_dir, version)
    target = bundles.promote(models_dir, version, alias)
    click.echo(f"{alias} → {target}")
