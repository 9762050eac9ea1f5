"""Subcommands for labels: describe, label, agreement."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from ..prompts import BAD, GOOD
from .data import (
    on_unknown_option,
    rejects_path_for,
    report_reject_messages,
    report_rejects,
    table_output,
)
from .options import NumberRange, friendly_errors, schema_from, schema_option, settings_from

if TYPE_CHECKING:
    from ..labels import Agreement
    from ..providers import LabelProvider


def provider_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options shared by describe and label: which provider, and how hard to push it."""
    options = [
        click.option(
            "--llm",
            "spec",
            default="rules",
            show_default=True,
            help="Label provider: rules (offline rubric), bedrock:MODEL_ID, or openai:MODEL (with --base-url).",
        ),
        click.option(
            "--base-url", default=None, help="OpenAI-compatible server, e.g. http://localhost:11434/v1."
        ),
        click.option("--aws-profile", default=None, help="AWS named profile for Bedrock."),
        click.option("--aws-region", default=None, help="AWS region for Bedrock, e.g. us-east-1."),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 256),
            default=4,
            show_default=True,
            help="Applicants in flight at once (remote providers).",
        ),
        click.option(
            "--rpm",
            type=NumberRange(min=0, min_open=True),
            default=None,
            help="Client-side limit on requests per minute [default: none].",
        ),
        click.option(
            "--timeout",
            type=NumberRange(min=0, min_open=True),
            default=60.0,
            show_default=True,
            help="Seconds to wait for one answer before retrying.",
        ),
        click.option(
            "--retries",
            type=click.IntRange(0, 20),
            default=5,
            show_default=True,
            help="Retries per call on throttling and transient errors (exponential backoff, jitter).",
        ),
        click.option(
            "--temperature",
            type=NumberRange(0, 2),
            default=0.0,
            show_default=True,
            help="Sampling temperature; 0 keeps answers repeatable.",
        ),
        click.option(
            "--cache",
            "cache_path",
            type=click.Path(path_type=Path),
            default=None,
            help="Answer cache (SQLite) [env PREAUTH_CACHE_PATH; default ./.preauth-cache.sqlite].",
        ),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the answer cache."),
        click.option("--progress/--no-progress", default=True, help="Show a progress bar on stderr."),
        on_unknown_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _provider(
    ctx: click.Context,
    spec: str,
    base_url: str | None,
    aws_profile: str | None,
    aws_region: str | None,
    timeout: float,
) -> LabelProvider:
    from ..providers import get_provider

    settings = settings_from(ctx)
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return get_provider(
        spec, base_url=base_url, aws_profile=aws_profile, aws_region=aws_region, timeout=timeout, api_key=key
    )


def _engine_options(ctx: click.Context, kw: dict[str, Any]) -> dict[str, Any]:
    from ..providers import Params

    cache = None if kw["no_cache"] else (kw["cache_path"] or settings_from(ctx).cache_path)
    return {
        "concurrency": kw["concurrency"],
        "cache_path": cache,
        "rpm": kw["rpm"],
        "timeout": kw["timeout"],
        "max_retries": kw["retries"],
        "params": Params(temperature=kw["temperature"]),
        "progress": kw["progress"],
    }


def _print_run(run: dict[str, Any]) -> None:
    tokens = ""
    if run["input_tokens"] or run["output_tokens"]:
        tokens = f", tokens {run['input_tokens']:,} in / {run['output_tokens']:,} out"
    click.echo(
        f"{run['provider']}/{run['model']} (prompts {run['prompt_version']}): {run['calls']} calls, "
        f"{run['cached']} cached, {run['retries']} retries, {run['repairs']} repairs, "
        f"{run['seconds']:.1f} s ({run['calls_per_second']:.1f} calls/s){tokens}",
        err=True,
    )


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("descriptions.csv"),
    show_default=True,
    callback=table_output,
    help="Applications with a description column (.csv or .parquet).",
)
@provider_options
@schema_option
@click.pass_context
@friendly_errors
def describe(
    ctx: click.Context,
    source: Path,
    output: Path,
    spec: str,
    base_url: str | None,
    aws_profile: str | None,
    aws_region: str | None,
    on_unknown: str,
    schema_path: Path | None,
    **kw: Any,
) -> None:
    """Write one short plain-language description per applicant.

    The provider writes it: the offline rules rubric by default, or an LLM (--llm). Answers are
    cached, so running again costs nothing. The output can be passed to `preauth label`, which
    then classifies these descriptions instead of writing new ones.

    \b
    Examples:
      preauth describe german_credit_data.csv -o descriptions.csv
      preauth describe apps.csv -o d.csv --llm openai:llama3.1 --base-url http://localhost:11434/v1
    """
    from ..applications import read_applications
    from ..labels import describe_applications, write_labels

    schema = schema_from(ctx, schema_path)
    applications = read_applications(source, on_unknown=on_unknown, schema=schema)  # type: ignore[arg-type]
    provider = _provider(ctx, spec, base_url, aws_profile, aws_region, kw["timeout"])
    options = _engine_options(ctx, kw)
    frame = describe_applications(applications, provider, **options)
    write_labels(frame, output)
    _print_run(frame.attrs["label_run"])
    missing = int((frame["description"] == "").sum())
    click.echo(
        f"{len(frame) - missing} descriptions → {output}"
        + (f" ({missing} could not be had)" if missing else "")
    )
    _finish(applications, source, output)


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("labels.csv"),
    show_default=True,
    callback=table_output,
    help="The labels file (.csv or .parquet) that `preauth train` reads.",
)
@provider_options
@schema_option
@click.pass_context
@friendly_errors
def label(
    ctx: click.Context,
    source: Path,
    output: Path,
    spec: str,
    base_url: str | None,
    aws_profile: str | None,
    aws_region: str | None,
    on_unknown: str,
    schema_path: Path | None,
    **kw: Any,
) -> None:
    """Label each applicant good risk or bad risk, with provider, model, prompt version and raw answer.

    Applicants are described first unless SOURCE has a description column (e.g. from `preauth
    describe`). Unreadable answers get one repair retry, then the applicant is written unlabeled
    (empty target) with the raw answer. When SOURCE has Risk, agreement with it is reported.
    The API key for openai:* comes from PREAUTH_OPENAI_API_KEY or OPENAI_API_KEY.

    \b
    Examples:
      preauth label german_credit_risk.csv -o labels.csv
      preauth label apps.csv -o labels.csv --llm bedrock:meta.llama3-70b-instruct-v1:0 \\
          --aws-profile bank --aws-region us-east-1 --concurrency 8 --rpm 400
    """
    from ..applications import read_table, validate
    from ..labels import agreement, label_applications, write_labels

    schema = schema_from(ctx, schema_path)
    table = read_table(source, schema)
    applications = validate(table, source=str(source), on_unknown=on_unknown, schema=schema)  # type: ignore[arg-type]
    descriptions = None
    name = next((c for c in table.columns if str(c).strip().lower() == "description"), None)
    if name is not None:
        descriptions = table[name].to_numpy(dtype=object)[applications.frame.index.to_numpy() - 1]
    provider = _provider(ctx, spec, base_url, aws_profile, aws_region, kw["timeout"])
    frame = label_applications(applications, provider, descriptions=descriptions, **_engine_options(ctx, kw))
    write_labels(frame, output)
    run = frame.attrs["label_run"]
    _print_run(run)
    bad = int((frame["target"] == BAD).sum())
    good = int((frame["target"] == GOOD).sum())
    unlabeled = len(frame) - bad - good
    click.echo(
        f"{len(frame)} applicants: {good} good risk, {bad} bad risk"
        + (f", {unlabeled} unlabeled (raw answers kept)" if unlabeled else "")
        + f" → {output}"
    )
    outcome = applications.outcome_column
    if outcome is not None and outcome in frame.columns and bad + good:
        labels = [t or None for t in frame["target"]]
        provenance = f"labels from {run['provider']}/{run['model']}"
        show_agreement(
            agreement(
                labels, frame[outcome], measured_against=f"{outcome} in {source.name}", provenance=provenance
            )
        )
    _finish(applications, source, output)


def _finish(applications: Any, source: Path, output: Path) -> None:
    from ..rejects import write_rejects

    if applications.rejects:
        report_rejects(
            applications, write_rejects(applications.rejects, str(source), rejects_path_for(output))
        )
        sys.exit(2)


@click.command("agreement")
@click.argument("labels_file", type=click.Path(path_type=Path))
@click.option(
    "--truth",
    type=click.Path(path_type=Path),
    default=None,
    help="File with the real outcomes (Risk) [default: the Risk column of LABELS_FILE].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@schema_option
@click.pass_context
@friendly_errors
def agreement_command(
    ctx: click.Context, labels_file: Path, truth: Path | None, as_json: bool, schema_path: Path | None
) -> None:
    """Measure a labels file (any file with a target column) against real outcomes.

    Rows are joined by id when both files have an id column, else by row order. Prints
    accuracy, Cohen's kappa, the confusion matrix and the majority-class baseline.

    \b
    Example (how good were the original pipeline's Llama 3 labels?):
      preauth agreement credit_data_with_targets.csv --truth german_credit_risk.csv
    """
    from ..labels import measure_labels

    result = measure_labels(labels_file, truth, schema=schema_from(ctx, schema_path))
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        show_agreement(result)
    if result.rejected:
        report_reject_messages(list(result.rejected))
        sys.exit(2)


def show_agreement(result: Agreement) -> None:
    """The agreement table: figures, then the confusion matrix (bad risk = positive)."""
    console = Console()
    console.print(f"labels:           {result.labels or 'as given'}", highlight=False)
    console.print(f"measured against: {result.measured_against}", highlight=False)
    table = Table(title="Label agreement", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("applicants compared", f"{result.n:,}")
    if result.unlabeled:
        table.add_row("unlabeled (left out)", f"{result.unlabeled:,}")
    if result.rejected:
        table.add_row("rejected rows (left out)", f"{len(result.rejected):,}")
    table.add_row("accuracy", f"{result.accuracy:.3f}")
    table.add_row("Cohen's kappa", f"{result.kappa:.3f}")
    table.add_row(f"majority class ({result.majority_label}) accuracy", f"{result.majority_accuracy:.3f}")
    table.add_row(
        "bad risk share: labels / truth", f"{result.label_bad_rate:.3f} / {result.truth_bad_rate:.3f}"
    )
    console.print(table)
    c = result.confusion
    matrix = Table(title="Confusion matrix (rows: truth, columns: label)", title_justify="left")
    matrix.add_column("")
    matrix.add_column("label good risk", justify="right")
    matrix.add_column("label bad risk", justify="right")
    matrix.add_row("truth good", str(c["tn"]), str(c["fp"]))
    matrix.add_row("truth bad", str(c["fn"]), str(c["tp"]))
    console.print(matrix)


COMMANDS: tuple[click.Command, ...] = (describe, label, agreement_command)
"""The ``preauth`` subcommands this module defines (added to the group by :mod:`preauth.cli`)."""
