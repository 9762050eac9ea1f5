"""``preauth train`` and ``preauth models``: fit a model from labels, and manage the bundles."""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .. import bundles
from ..errors import ModelBundleError
from ..evaluation import baseline_rows, metrics_table, one_sided, summary_rows
from ..referral import DEFAULT_REVIEW_BAND, band_in_use, band_overridden
from ..training import TrainingConfig, TrainingResult, train_from_file
from ..training.on_dask import SEARCH_ROWS
from .data import report_reject_messages
from .options import NumberRange, friendly_errors, schema_from, schema_option, settings_from

_DEFAULTS = TrainingConfig()


@click.command()
@click.argument("labels", type=click.Path(path_type=Path), required=False)
@click.option(
    "--from-store",
    is_flag=True,
    help="Train on the real outcomes recorded in the decision store (see `preauth outcomes`) instead "
    "of a LABELS file: every decided application with an outcome (implies --target risk).",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="With --from-store: only decisions made from this date on.",
)
@click.option(
    "--database-url",
    default=None,
    help="With --from-store: the decision store [env PREAUTH_DATABASE_URL; default sqlite:///preauth.db].",
)
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
    type=NumberRange(min=0, min_open=True),
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
    type=NumberRange(0, 1, min_open=True, max_open=True),
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
    type=NumberRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Decision threshold on p(bad risk); by default the lowest expected cost on validation data.",
)
@click.option(
    "--review-band",
    type=NumberRange(0, 0.5, max_open=True),
    default=DEFAULT_REVIEW_BAND,
    show_default=True,
    help="Refer a decision whose calibrated p(bad risk) is within this of the threshold (each side) "
    "to a person (see `GET /v1/reviews`); 0: only applications outside the training range are referred.",
)
@click.option(
    "--truth",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A file with the real outcomes (Risk) of the same applicants, joined by id when both files "
    "have one, else by row order: the model trained on provider labels is measured against them too.",
)
@click.option(
    "--refit/--no-refit",
    default=_DEFAULTS.refit,
    show_default=True,
    help="After the holdout evaluation, refit the shipped model on all rows (training part + "
    "holdout) with the chosen parameters; --no-refit ships the model the holdout measured.",
)
@click.option(
    "--monotone/--no-monotone",
    default=_DEFAULTS.monotone,
    show_default=True,
    help="Train under the schema's per-field directions (risk never falls as Credit amount or "
    "Duration rises); --no-monotone lifts them (the run still reports what they cost).",
)
@click.option(
    "--calibration",
    type=click.Choice(["auto", "none", "platt", "isotonic"]),
    default=_DEFAULTS.calibration,
    show_default=True,
    help="Map the booster's scores to probabilities, fitted on the search's out-of-fold predictions; "
    "auto keeps Platt or isotonic, whichever has the lower cross-validated log loss.",
)
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Show the search progress bar."
)
@schema_option
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
    help="Add trials to the named shared study, then stop (its --study-name process makes the bundle). "
    "Waits up to 30 s for the study or its --study-name process, then stops: a mistyped name is not a new study.",
)
@click.option(
    "--dask",
    "dask_spec",
    metavar="SPEC",
    default=None,
    help="Train on a Dask cluster: local (a worker process per core), local:N, or tcp://HOST:8786. "
    "LABELS may then be a file, a directory or a glob of CSV/Parquet files, read in pieces by the "
    "workers, which check, encode and keep them; the boosters on all rows are fit across them "
    "with xgboost.dask. The search runs in this process on a sample of at most --search-rows rows "
    "(add --study-storage to spread its trials over processes and machines).",
)
@click.option(
    "--search-rows",
    type=click.IntRange(min=100),
    default=SEARCH_ROWS,
    show_default=True,
    help="With --dask: the most labelled rows this process holds, a seeded sample of the input for "
    "the search, calibration, threshold, baselines and holdout figures (the boosters on all rows are "
    "fit on the workers). Bounds this process's memory whatever the input's size; an input of at "
    "most this many rows is trained exactly as on one machine.",
)
@click.pass_context
@friendly_errors
def train(
    ctx: click.Context,
    labels: Path | None,
    from_store: bool,
    since: datetime | None,
    database_url: str | None,
    target: str,
    trials: int,
    timeout: float | None,
    seed: int,
    folds: int,
    holdout_fraction: float,
    exclude: tuple[str, ...],
    include: tuple[str, ...],
    threshold: float | None,
    review_band: float,
    truth: Path | None,
    refit: bool,
    monotone: bool,
    calibration: str,
    progress: bool,
    schema_path: Path | None,
    study_storage: str | None,
    study_name: str | None,
    join_study: str | None,
    dask_spec: str | None,
    search_rows: int,
) -> None:
    """Train a bad-risk classifier on LABELS and write a new model bundle.

    LABELS is a file from `preauth label` (application columns plus `target` = good risk / bad
    risk), any file with such a `target` column (e.g. the original pipeline's
    credit_data_with_targets.csv), or, with --target risk, applications with their real outcome
    (the schema's target column: `Risk` for German Credit). Rows with an empty target are left
    out and counted. With --schema FILE the model learns that schema's columns and carries the
    schema in its bundle.

    \b
    What happens:
      1. a stratified holdout (20%) is set aside;
      2. Optuna's TPE sampler tunes XGBoost for ROC AUC under stratified k-fold CV on the rest,
         with early stopping, pruning, and scale_pos_weight around negatives/positives
         (bad risk is the positive class);
      3. a calibration map (Platt or isotonic) is fitted on the out-of-fold predictions, and
         the threshold minimizing expected cost is chosen on the calibrated ones
         (approving a bad applicant costs 5, refusing a good one 1, unless the schema's
         [costs] says otherwise);
      4. the model is fit on the training part and evaluated once on the holdout, against the
         labels it learned and, when the file has Risk, against the real outcome too;
      5. the shipped model is then refit on all rows with the same parameters (--no-refit: not).

    \b
    The bundle goes to <models-dir>/vN/ (global --models-dir, default ./models).
    Examples:
      preauth train work/labels.csv
      preauth train data.csv --target risk --trials 50 --seed 7
      preauth train llm_labels.csv --truth german_credit_risk.csv
      preauth --models-dir out/models train labels.csv --exclude Age --threshold 0.3
      preauth train lender.csv --schema lender.toml --target risk
      preauth train --from-store --since 2026-01-01      # on the outcomes that came back
      preauth train labels.csv --trials 200 --study-storage postgresql+psycopg://u@db/optuna --study-name s1
      preauth train labels.csv --trials 200 --study-storage postgresql+psycopg://u@db/optuna --join-study s1
      preauth train 'labels/*.parquet' --target risk --dask local:4
      preauth train /shared/labels/ --target risk --dask tcp://scheduler:8786

    \b
    With --dask the run is the same (holdout, search, calibration, threshold, evaluation, refit,
    bundle format: serve and predict cannot tell the bundles apart): the labels are read by the
    workers, and the two boosters fit on many rows (the training part, then the refit on every
    row) are grown across the workers by xgboost.dask from the blocks the workers read, checked
    and encoded. This process holds at most --search-rows labelled rows (a seeded sample, each
    row's draw from the seed and its row number, as is its holdout split): the search's trials
    and folds, calibration, threshold, baselines and holdout figures run on it; with
    --study-storage several such processes share the trials. An input of at most --search-rows
    rows is all held here and trained as on one machine (same seed, same parameters). bundle.json's
    training.engine records the scheduler, worker count and the rows each fit and the search had.
    """
    settings = settings_from(ctx)
    if (labels is None) == (not from_store):
        raise click.UsageError("give a LABELS file or --from-store (one of the two)")
    if since is not None and not from_store:
        raise click.UsageError("--since goes with --from-store")
    if (
        dask_spec is None
        and ctx.get_parameter_source("search_rows") is not click.core.ParameterSource.DEFAULT
    ):
        raise click.UsageError("--search-rows goes with --dask (without it, this process holds every row)")
    schema = schema_from(ctx, schema_path)
    if from_store:
        labels = _labels_from_store(database_url or settings.database_url, schema, since, settings.models_dir)
        target = "risk"
        click.echo(f"preauth: real outcomes from the decision store written to {labels}", err=True)
    assert labels is not None
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
        review_band=review_band,
        refit=refit,
        monotone=monotone,
        calibration=calibration,  # type: ignore[arg-type]  # click.Choice checked it
    )
    if study_storage is None and (study_name or join_study):
        raise click.UsageError("--study-name and --join-study need --study-storage")
    if study_storage is not None and bool(study_name) == bool(join_study):
        raise click.UsageError("with --study-storage, give either --study-name or --join-study")
    from ..training.shared_study import StudyJoined, shared_study

    name = study_name or join_study or ""
    with contextlib.ExitStack() as sharing:
        if study_storage is not None:
            sharing.enter_context(shared_study(study_storage, name, joining=join_study is not None))
        cluster = None
        if dask_spec is not None:
            from ..cluster import connect
            from ..training.on_dask import ClusterTraining

            cluster = ClusterTraining(
                sharing.enter_context(connect(dask_spec)), dask_spec, search_rows=search_rows
            )
        try:
            result = train_from_file(
                labels,
                config,
                Path(settings.models_dir),
                progress=progress,
                schema=schema,
                truth=truth,
                cluster=cluster,
            )
        except StudyJoined as joined:
            click.echo(f"study '{name}': this process {joined}; the study's owner makes the bundle")
            return
    print_training_result(result, Console())
    truth_rejected = (result.provenance.get("truth") or {}).get("rejected_rows") or []
    if result.rejects:
        # Trained on the rows that passed, like every batch stage; the rejected ones are named on
        # stderr and make the exit code 2, so a script never takes a partial file for a whole one.
        report_reject_messages(result.rejects, total=result.label_counts["rejected"])
    if truth_rejected:
        # The outcomes file's refused rows are unknown outcomes: measured without them, said so.
        report_reject_messages(truth_rejected, total=result.provenance["truth"]["rejected"])
    if result.rejects or truth_rejected:
        sys.exit(2)


def _labels_from_store(url: str, schema: Any, since: datetime | None, models_dir: Path) -> Path:
    """The store's decisions with outcomes as a labels file, kept under the models directory so the
    bundle's provenance names a file that still exists."""
    from ..files import atomic_path
    from ..outcomes import labels_from_store
    from ..store import DecisionStore

    store = DecisionStore(url, create=False)
    try:
        store.migrate()
        frame = labels_from_store(store, schema, since=since)
    finally:
        store.close()
    path = Path(models_dir) / "from-store" / f"outcomes_{datetime.now().strftime('%Y%m%d_%H%M%S')}.csv"
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def _chance(calibration: dict[str, Any]) -> str:
    """The holdout ECE's chance level, in brackets (bundles trained before it was measured lack it)."""
    mean, upper = calibration.get("ece_chance"), calibration.get("ece_chance_upper")
    if mean is None or upper is None:
        return ""
    return (
        f" (perfectly calibrated would show {mean:.3f} by chance on these {calibration['n']:,} rows, "
        f"95%: ≤ {upper:.3f})"
    )


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
    joined = result.provenance.get("truth")
    if joined:
        console.print(
            f"Real outcomes: {joined['source']} ({joined['known']} of the labelled applicants known)",
            highlight=False,
            soft_wrap=True,
        )
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
    title = f"Holdout evaluation ({metrics['holdout']['n']} rows)"
    if metrics["holdout"].get("intervals"):
        title += "; [95% bootstrap interval]"
    console.print(metrics_table(columns, title=title))

    gap = Table(title="Overfitting check", title_justify="left", show_header=False)
    gap.add_column("what")
    gap.add_column("AUC", justify="right")
    for name, value in summary_rows(metrics):
        gap.add_row(name, value)
    console.print(gap)

    for name, rows, lines in baseline_rows(metrics):
        table = Table(title=f"Baselines vs {name} ({rows})", title_justify="left")
        for heading in ("", "ROC AUC", "Brier", f"Cost per applicant ({result.costs.ratio})"):
            table.add_column(heading, justify="right" if heading else "left")
        for line in lines:
            table.add_row(*line)
        console.print(table)
    cv = (metrics.get("baselines") or {}).get("cv")
    if cv:
        console.print(
            f"Cross-validated AUC on {cv['rows']}: this model {cv['model_auc']:.3f} (optimistic), "
            f"logistic regression {cv['logistic_auc']:.3f} ± {cv['logistic_auc_std']:.3f}",
            highlight=False,
            soft_wrap=True,
        )

    search = result.search
    console.print(
        f"Search: {search['n_complete']} completed trials (+{search['n_pruned']} pruned) in "
        f"{search['duration_s']:.1f}s; best trial #{search['best_trial']} CV AUC {search['best_value']:.3f} "
        f"(optimistic: the best of {search['n_complete']} on the folds that chose it)",
        highlight=False,
        soft_wrap=True,
    )
    default = search.get("default")
    if default:
        console.print(
            f"Shipped: {search['shipped']} ({search['shipped_reason']}); {search['n_rounds']} rounds",
            highlight=False,
            soft_wrap=True,
        )
    monotone = search.get("monotone")
    if monotone:
        fields = ", ".join(f"{k} {v}" for k, v in monotone["directions"].items())
        console.print(
            f"Monotone constraints {'on' if monotone['applied'] else 'off (--no-monotone)'} ({fields}): "
            f"CV AUC {monotone['cv_auc_with']:.3f} with them, {monotone['cv_auc_without']:.3f} without",
            highlight=False,
            soft_wrap=True,
        )
    refit = metrics.get("refit")
    if refit:
        console.print(f"Shipped model: {refit['shipped_model']}", highlight=False, soft_wrap=True)
    calibration = metrics.get("calibration")
    if calibration:
        console.print(
            f"Calibration: {result.calibration_method}; holdout ECE {calibration['ece_raw']:.3f} → "
            f"{calibration['ece']:.3f}{_chance(calibration)}, Brier {calibration['brier_raw']:.3f} → {calibration['brier']:.3f} "
            f"(constant base rate: {calibration['brier_base_rate']:.3f}); mean p(bad) "
            f"{calibration['mean_probability']:.3f} vs observed {calibration['observed_rate']:.3f}, "
            f"vs {calibration['measured_against']}",
            highlight=False,
            soft_wrap=True,
        )
    chosen = (
        "given by --threshold"
        if result.threshold_given
        else f"the lowest expected cost where {result.costs.text}"
    )
    console.print(
        f"Threshold: {result.threshold:.3f} (calibrated p(bad risk) ≥ threshold → refuse; {chosen})",
        highlight=False,
        soft_wrap=True,
    )
    lopsided = one_sided(metrics["holdout"], result.costs)
    if lopsided:
        console.print(lopsided, highlight=False, soft_wrap=True)
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


@click.group()
def models() -> None:
    """List, inspect and promote model bundles (in the global --models-dir, default ./models)."""


def _metric(meta: dict[str, Any], *keys: str) -> str:
    value: Any = meta.get("metrics") or {}
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return f"{value:.3f}" if isinstance(value, (int, float)) else "–"


def _band(meta: dict[str, Any], override: float | None) -> str:
    """The review band a bundle refers with here: its own, or ``PREAUTH_REVIEW_BAND``'s."""
    used = band_in_use(band_overridden(meta, override))
    if used["source"] == "bundle":
        return "none" if used["trained"] is None else f"{used['band']:.3f}"
    shown = f"{used['band']:.3f}"
    own = "none" if used["trained"] is None else f"{used['trained']:.3f}"
    return f"{shown} (PREAUTH_REVIEW_BAND; own {own})"


@models.command("list")
@click.pass_context
@friendly_errors
def list_models(ctx: click.Context) -> None:
    """Every bundle with its creation time, labels, holdout AUC, threshold, review band and aliases."""
    settings = settings_from(ctx)
    models_dir = Path(settings.models_dir)
    versions = bundles.list_versions(models_dir)
    if not versions:
        click.echo(f"no models in {models_dir}: run `preauth train` first")
        return
    aliases: dict[str, list[str]] = {}
    for alias, version in bundles.read_aliases(models_dir).items():
        aliases.setdefault(version, []).append(alias)
    table = Table(title=f"Models in {models_dir}", title_justify="left")
    for heading in (
        "version",
        "created",
        "target",
        "holdout AUC",
        "AUC vs real outcome",
        "threshold",
        "review band",
        "aliases",
    ):
        table.add_column(heading, justify="right" if "AUC" in heading or heading == "threshold" else "left")
    for version in versions:
        try:
            meta = bundles.read_meta(models_dir / version)
        except ModelBundleError as error:
            table.add_row(
                version, "–", f"[red]{error}[/]", "–", "–", "–", "–", ", ".join(aliases.get(version, []))
            )
            continue
        table.add_row(
            version,
            str(meta.get("created_at", ""))[:19].replace("T", " "),
            str((meta.get("metrics") or {}).get("measured_against", meta.get("target", "–"))),
            _metric(meta, "holdout", "roc_auc"),
            _metric(meta, "against_risk", "roc_auc"),
            f"{float(meta.get('threshold', 0)):.3f}",
            _band(meta, settings.review_band),
            ", ".join(aliases.get(version, [])),
        )
    Console().print(table)


@models.command("show")
@click.argument("version", required=False)
@click.pass_context
@friendly_errors
def show_model(ctx: click.Context, version: str | None) -> None:
    """Print a bundle's metadata as JSON (VERSION: vN or an alias; default production, else latest),
    with ``review_band_in_use``: the band it refers with here, its own or ``PREAUTH_REVIEW_BAND``'s."""
    settings = settings_from(ctx)
    path = bundles.resolve(Path(settings.models_dir), version)
    meta = bundles.read_meta(path)
    meta["files"] = sorted(p.name for p in path.iterdir() if p.is_file())
    meta["review_band_in_use"] = band_in_use(band_overridden(meta, settings.review_band))
    click.echo(json.dumps(meta, indent=2))


@models.command("promote")
@click.argument("version")
@click.option(
    "--alias",
    default=bundles.PRODUCTION,
    show_default=True,
    help="The alias to point at VERSION (lower-case letters, digits, - and _).",
)
@click.pass_context
@friendly_errors
def promote_model(ctx: click.Context, version: str, alias: str) -> None:
    """Point the production alias at VERSION (v1, v2, ... in --models-dir), after checking that it loads."""
    models_dir = Path(settings_from(ctx).models_dir)
    target = bundles.promote(models_dir, version, alias)
    click.echo(f"{alias} → {target}")


COMMANDS: tuple[click.Command, ...] = (train, models)
"""The ``preauth`` subcommands this module defines (added to the group by :mod:`preauth.cli`)."""
