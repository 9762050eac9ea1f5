"""Subcommands that read and write application files: prepare, sample, predict, run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from ..formats import FORMATS
from .options import friendly_errors, one_line, schema_from, schema_option, settings_from

if TYPE_CHECKING:
    from ..applications import Applications

# The libraries behind each command (pandas, Arrow, XGBoost) are imported when it runs, so that
# `preauth --help` and every other command do not pay for them.

SHOWN_REJECTS = 10
on_unknown_option = click.option(
    "--on-unknown",
    type=click.Choice(["error", "unknown"]),
    default="error",
    show_default=True,
    help="An unknown category rejects the row (error) or is read as 'unknown'.",
)


TABLE_SUFFIXES = {"": "CSV", ".csv": "CSV", ".txt": "CSV", ".parquet": "Parquet", ".pq": "Parquet"}
"""What a table output's name says it holds: anything else (.json, .xlsx) would be a file of the
wrong kind under that name, which no reader (preauth's included) opens as what it says."""


def writable_output(value: Path, ctx: click.Context, param: click.Parameter) -> Path:
    """Refuse, before any work, an output that can never be written (a folder, a path through a file)."""
    from ..files import check_file_target

    try:
        check_file_target(value)
    except OSError as error:
        raise click.BadParameter(f"{error.filename}: {error.strerror}", ctx, param) from None
    return value


def table_output(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """A table is written as CSV or Parquet, chosen by the name; any other name is refused up front."""
    if value.suffix.lower() not in TABLE_SUFFIXES:
        raise click.BadParameter(
            f"'{value}' is not a CSV or Parquet name; name it .csv (or .parquet)", ctx, param
        )
    return writable_output(value, ctx, param)


def csv_output(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """`sample` writes CSV only: a .json or .parquet name would be a file of the wrong kind."""
    if TABLE_SUFFIXES.get(value.suffix.lower()) != "CSV":
        raise click.BadParameter(f"'{value}' would hold CSV; name it .csv", ctx, param)
    return writable_output(value, ctx, param)


def report_rejects(applications: Applications, rejects_file: Path | None) -> None:
    """Print the first rejects, one line each, and where the rest went."""
    report_reject_messages(applications.reject_messages(), rejects_file)


def report_reject_messages(
    messages: list[str], rejects_file: Path | None = None, *, total: int | None = None
) -> None:
    """The rejected rows on stderr, one ``preauth: rejected:`` line each, as every command reports them.

    ``total``: how many rows were rejected, when ``messages`` holds only the first ones (``train --dask``).
    """
    for message in messages[:SHOWN_REJECTS]:
        click.echo(f"preauth: rejected: {one_line(message)}", err=True)
    rejected = max(len(messages), total or 0)
    more = rejected - min(len(messages), SHOWN_REJECTS)
    if more > 0:
        click.echo(f"preauth: ... and {more} more", err=True)
    if rejects_file is not None:
        click.echo(f"preauth: {rejected} rejected rows with reasons in {rejects_file}", err=True)


def rejects_path_for(output: Path) -> Path:
    return output.with_name(output.name.split(".")[0] + ".rejects.csv")


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("prepared.csv"),
    show_default=True,
    callback=table_output,
    help="Validated applications (.csv or .parquet).",
)
@on_unknown_option
@schema_option
@click.pass_context
@friendly_errors
def prepare(
    ctx: click.Context, source: Path, output: Path, on_unknown: str, schema_path: Path | None
) -> None:
    """Read and validate applications (CSV, Parquet, JSON) into the canonical layout.

    Column names match however they are spelled; a missing value becomes what the schema says
    it means (German Credit: missing Saving/Checking account becomes 'unknown'). Bad rows go to
    OUTPUT's .rejects.csv with their reasons (exit code 2); the good rows are written all the same.

    \b
    Example:  preauth prepare german_credit_data.csv -o prepared.csv
              preauth prepare lender.csv --schema lender.toml -o prepared.csv
    """
    from ..applications import read_applications
    from ..rejects import write_rejects
    from ..samples import write_prepared

    schema = schema_from(ctx, schema_path)
    applications = read_applications(source, on_unknown=on_unknown, schema=schema)  # type: ignore[arg-type]
    write_prepared(applications, output)
    click.echo(f"{len(applications)} applications → {output}")
    if applications.rejects:
        report_rejects(
            applications, write_rejects(applications.rejects, str(source), rejects_path_for(output))
        )
        sys.exit(2)


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("sample.csv"),
    show_default=True,
    callback=csv_output,
    help="The CSV to write.",
)
@schema_option
@click.pass_context
@friendly_errors
def sample(ctx: click.Context, source: Path, output: Path, schema_path: Path | None) -> None:
    """Turn application objects (JSON object, array, JSON Lines, or a results file) into a CSV.

    The CSV is in the original column layout and can be passed to `preauth predict`.

    \b
    Example:  preauth sample application.json -o sample.csv
    """
    from ..samples import write_sample

    path, applications = write_sample(source, output, schema_from(ctx, schema_path))
    click.echo(f"{len(applications)} applications → {path}")
    if applications.rejects:
        report_rejects(applications, None)
        sys.exit(2)


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--model", "model_ref", default=None, help="Version or alias [default: production, else latest]."
)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory for the results file [default: ./results].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    default="json",
    show_default=True,
    help="json: the original array; jsonl, parquet, csv for large jobs.",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Add each decision (approve, decline, or refer: outside what the model was trained on) and its principal reasons.",
)
@click.option(
    "--batch-rows",
    type=click.IntRange(min=1),
    default=None,
    help="Rows read, scored and written at a time (bounds memory) [default: PREAUTH_BATCH_ROWS, 100000].",
)
@click.option(
    "--dask",
    "dask_spec",
    default=None,
    metavar="local[:N]|tcp://HOST:8786",
    help="Score on a Dask cluster: SOURCE may be a file, a directory or a glob of CSV/Parquet files; "
    "the results are a directory of parquet, jsonl or csv parts.",
)
@on_unknown_option
@click.pass_context
@friendly_errors
def predict(
    ctx: click.Context,
    source: Path,
    model_ref: str | None,
    output_dir: Path | None,
    fmt: str,
    explain: bool,
    batch_rows: int | None,
    dask_spec: str | None,
    on_unknown: str,
) -> None:
    """Score applications and write results/inference_results_<stamp>.<format>.

    Each result holds input_data, probability_fraud (probability of bad risk), is_fraud,
    target ('bad risk'/'good risk'), confidence and timestamp, as the original pipeline wrote
    them. Rejected rows go to a .rejects.csv beside it (exit code 2); the others are scored.
    The file is read, scored and written a batch at a time, so memory does not grow with it;
    the results file appears only when complete.

    \b
    Example:  preauth predict sample.csv --model production -o results/
    """
    from ..bundles import load_bundle
    from ..referral import with_review_band
    from ..results import score_file
    from ..scoring import results_path

    settings = settings_from(ctx)
    console = Console(stderr=True)
    bundle = with_review_band(load_bundle(settings.models_dir, model_ref), settings.review_band)
    # A column the model uses must be in the file even when the schema makes it optional (Sex,
    # for a model trained with --include Sex), unless its absence means 'unknown' (the balances).
    # The file is read with the model's own schema, never the code's default.
    required = bundle.schema.required_columns(bundle.features)
    directory = output_dir or settings.results_dir
    with results_path(directory, fmt) as path:  # type: ignore[arg-type]
        if dask_spec is not None:
            predict_on_cluster(
                dask_spec,
                bundle,
                str(source),
                path,
                fmt,
                explain=explain,
                on_unknown=on_unknown,
                required=required,
                batch_rows=batch_rows or settings.batch_rows,
                direct_writes=settings.direct_writes,
            )
            return
        with console.status(f"scoring {source} with model {bundle.version} into {path}"):
            results = score_file(
                bundle,
                source,
                path,
                fmt,  # type: ignore[arg-type]
                explain=explain,
                on_unknown=on_unknown,  # type: ignore[arg-type]
                required=required,
                batch_rows=batch_rows or settings.batch_rows,
                direct_writes=settings.direct_writes,
                rejects_path=rejects_path_for(path),
            )
    click.echo(
        f"{results.scored} scored with model {bundle.version} (threshold {bundle.threshold:.3f}): "
        f"{results.bad} bad risk, {results.scored - results.bad} good risk → {path}"
    )
    if results.rejected:
        messages = [r.message(str(source)) for r in results.rejects[:SHOWN_REJECTS]]
        report_reject_messages(messages, results.rejects_path, total=results.rejected)
        sys.exit(2)


def predict_on_cluster(spec: str, bundle: Any, source: str, path: Path, fmt: str, **options: Any) -> None:
    """`predict --dask`: the partitioned results directory, and one rejects file per input file."""
    from ..cluster import PART_FORMATS, connect, input_files, score_on_cluster

    if fmt not in PART_FORMATS:
        raise click.UsageError(f"--dask writes parts: choose --format {' or '.join(PART_FORMATS)}")
    files = input_files(source)
    with (
        Console(stderr=True).status(f"scoring {len(files)} file(s) on Dask ({spec})"),
        connect(spec) as client,
    ):
        results = score_on_cluster(
            client,
            bundle,
            files,
            path,
            fmt,  # type: ignore[arg-type]
            rejects_names=lambda file: _rejects_name(path, file, several=len(files) > 1),
            **options,
        )
    click.echo(
        f"{results.scored} scored with model {bundle.version} (threshold {bundle.threshold:.3f}) on "
        f"Dask: {results.bad} bad risk, {results.scored - results.bad} good risk → {path} "
        f"({results.parts} parts)"
    )
    if results.rejects_paths:
        for file, written in results.rejects_paths.items():
            messages = [r.message(file) for r in results.rejects[file][:SHOWN_REJECTS]]
            report_reject_messages(messages, written, total=results.rejected[file])
        sys.exit(2)


def _rejects_name(path: Path, file: str, *, several: bool) -> Path:
    """A ``--dask`` run's rejects file for one input file (named after it when there are several)."""
    name = rejects_path_for(path)
    return name.with_name(f"{name.name.split('.')[0]}.{Path(file).stem}.rejects.csv") if several else name


@click.command("run")
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=Path("work"),
    show_default=True,
    help="Everything the run writes goes here.",
)
@click.option(
    "--llm",
    "provider",
    default="rules",
    show_default=True,
    help="Label provider: rules (offline), bedrock:MODEL, openai:MODEL (with --base-url).",
)
@click.option("--base-url", default=None, help="OpenAI-compatible server, e.g. http://localhost:11434/v1.")
@click.option("--aws-profile", default=None, help="AWS named profile for Bedrock.")
@click.option("--aws-region", default=None, help="AWS region for Bedrock, e.g. us-east-1.")
@click.option("--trials", type=int, default=30, show_default=True, help="Hyperparameter search trials.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--data",
    "training_data",
    type=click.Path(path_type=Path),
    default=None,
    help="Applications to label and train on [default: the bundled German Credit data].",
)
@schema_option
@click.pass_context
@friendly_errors
def run_command(
    ctx: click.Context,
    workdir: Path,
    provider: str,
    base_url: str | None,
    aws_profile: str | None,
    aws_region: str | None,
    trials: int,
    seed: int,
    training_data: Path | None,
    schema_path: Path | None,
) -> None:
    """Run the whole chain on the bundled German Credit data, offline by default.

    \b
    prepare → describe + label (rules provider) → train (Optuna-tuned XGBoost)
            → promote to production → predict → summary
    Files: WORKDIR/prepared.csv, labels.csv, models/<version>/ (with report.html), results/.

    \b
    With --data FILE --schema FILE it runs on a lender's own file; when the provider cannot
    label that schema (rules knows only German Credit), the model learns the file's real outcomes.

    \b
    Example:  preauth run --workdir work --trials 30
              preauth run --data lender.csv --schema lender.toml
    """
    from ..pipeline import run_pipeline
    from ..providers import get_provider
    from ..training import TrainingConfig

    key = settings_from(ctx).openai_api_key
    chosen = get_provider(
        provider,
        base_url=base_url,
        aws_profile=aws_profile,
        aws_region=aws_region,
        api_key=key.get_secret_value() if key else None,
    )
    console = Console()
    summary = run_pipeline(
        workdir,
        training_data=training_data,
        provider=chosen,
        config=TrainingConfig(trials=trials, seed=seed),
        schema=schema_from(ctx, schema_path),
        on_stage=lambda name: console.rule(f"[bold]{name}"),
    )
    print_summary(console, summary)


def print_summary(console: Console, summary: Any) -> None:
    """The closing table: each stage, then what the labels and the model are worth, and against what."""
    from rich.table import Table

    stages = Table(title=f"preauth run: {summary.workdir}", title_justify="left")
    for name in ("stage", "time", "result", "output"):
        stages.add_column(name)
    for s in summary.stages:
        stages.add_row(s["stage"], f"{s['seconds']:.1f} s", s["detail"], str(s["output"] or ""))
    console.print(stages)
    if summary.label_agreement:
        a = summary.label_agreement
        console.print(
            f"Provider labels vs {a['measured_against']}: accuracy {a['accuracy']:.3f}, "
            f"Cohen's kappa {a['kappa']:.3f} (majority class alone: {a['majority_accuracy']:.3f})"
        )
    from ..evaluation import metric_with_interval

    metrics = summary.metrics
    table = Table(
        title=f"Model {summary.model_version} on the holdout [95% bootstrap interval]", title_justify="left"
    )
    table.add_column("metric")
    holdout = metrics.get("holdout") or {}
    risk = metrics.get("against_risk")
    table.add_column(f"vs {holdout.get('measured_against', metrics.get('measured_against', 'labels'))}")
    if risk:
        table.add_column(f"vs {risk.get('measured_against', 'Risk')}")
    for key in ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "ks", "brier"):
        row = [key, metric_with_interval(holdout, key)]
        if risk:
            row.append(metric_with_interval(risk, key))
        table.add_row(*row)
    console.print(table)
    from ..evaluation import one_sided

    lopsided = one_sided(holdout, summary.costs)
    if lopsided:
        console.print(lopsided, highlight=False, soft_wrap=True)
    console.print(
        f"Decisions on {summary.results}: {summary.decisions.get('bad risk', 0)} bad risk, "
        f"{summary.decisions.get('good risk', 0)} good risk"
    )
    models = summary.workdir / "models"
    console.print(f"Report: preauth --models-dir {models} report {summary.model_version}")
    console.print(
        f"Serve it (API and web page on http://127.0.0.1:8080/): preauth --models-dir {models} serve"
    )


COMMANDS: tuple[click.Command, ...] = (prepare, sample, predict, run_command)
"""The ``preauth`` subcommands this module defines (added to the group by :mod:`preauth.cli`)."""
