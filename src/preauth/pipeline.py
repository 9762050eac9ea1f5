"""The whole chain in one call: applications → labels → tuned model → decisions.

This is what ``preauth run`` does on the bundled German Credit data with the offline provider:
every file it makes goes under one work directory, and the summary says what each number was
measured against (provider labels or real outcomes). On a lender's own file and schema, when the
provider cannot label that schema (the rules rubric knows only German Credit) and the file has
real outcomes, the model learns those outcomes instead, and the summary says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .applications import GERMAN, GERMAN_COSTS, Costs, Schema, read_applications
from .bundles import load_bundle, promote
from .errors import ConfigurationError
from .files import make_directory
from .labels import agreement, label_applications, write_labels
from .providers import LabelProvider, get_provider
from .rejects import write_rejects
from .results import write_results
from .samples import write_prepared
from .scoring import results_path, score
from .training import TrainingConfig, train_from_file


def bundled_data(name: str = "german_credit_risk.csv") -> Path:
    """A file of the bundled German Credit data (Hofmann 1994, UCI, CC BY 4.0)."""
    return Path(str(resources.files("preauth") / "data" / name))


@dataclass
class RunSummary:
    """What a run wrote and measured, stage by stage."""

    workdir: Path
    stages: list[dict[str, Any]] = field(default_factory=list)
    label_agreement: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    model_version: str = ""
    results: Path | None = None
    decisions: dict[str, int] = field(default_factory=dict)
    costs: Costs = GERMAN_COSTS


def run_pipeline(
    workdir: Path,
    *,
    training_data: Path | None = None,
    scoring_data: Path | None = None,
    provider: LabelProvider | str = "rules",
    provider_options: dict[str, Any] | None = None,
    config: TrainingConfig | None = None,
    concurrency: int = 4,
    progress: bool = True,
    on_stage: Callable[[str], None] | None = None,
    schema: Schema = GERMAN,
) -> RunSummary:
    """Prepare, label, train, promote and predict; returns the summary of every stage.

    Without ``training_data`` the bundled German Credit data is used (German schema only); the
    decisions are made on ``scoring_data``, by default the bundled applications for German Credit
    and the training file itself for any other schema.
    """
    german = schema.same_as(GERMAN)
    if training_data is None and not german:
        raise ConfigurationError(f"the schema '{schema.name}' needs its own data: give --data FILE")
    config = config or TrainingConfig()
    config.check()  # before labelling, which may be a paid LLM's thousand calls, not after it
    make_directory(workdir)
    training_data = training_data or bundled_data("german_credit_risk.csv")
    scoring_data = scoring_data or (bundled_data("german_credit_data.csv") if german else training_data)
    chosen = get_provider(provider) if isinstance(provider, str) else provider
    summary = RunSummary(workdir)

    def stage(name: str, started: float, detail: str, output: Path | None) -> None:
        summary.stages.append(
            {"stage": name, "seconds": time.perf_counter() - started, "detail": detail, "output": output}
        )

    def announce(name: str) -> float:
        if on_stage:
            on_stage(name)
        return time.perf_counter()

    started = announce("prepare")
    applications = read_applications(training_data, schema=schema)
    prepared = write_prepared(applications, workdir / "prepared.csv")
    if applications.rejects:
        write_rejects(applications.rejects, applications.source, workdir / "prepared.rejects.csv")
    stage(
        "prepare",
        started,
        f"{len(applications)} applications, {len(applications.rejects)} rejected",
        prepared,
    )

    refusal = getattr(chosen, "refusal", None)
    why = refusal(schema) if callable(refusal) else None
    if why:
        if not applications.has_outcome:
            raise ConfigurationError(why)
        # The provider cannot label this schema, but the file knows what really happened: learn that.
        stage(
            "describe + label",
            time.perf_counter(),
            f"skipped: {chosen.name} cannot label '{schema.name}'",
            None,
        )
        config = replace(config, target="risk")
        started = announce("train")
        result = train_from_file(prepared, config, workdir / "models", progress=progress, schema=schema)
        outcome = applications.outcome_column
    else:
        result, started = _label_and_train(
            applications,
            chosen,
            workdir,
            config,
            concurrency,
            progress,
            provider_options,
            announce,
            stage,
            summary,
            schema,
        )
        outcome = None
    models_dir = workdir / "models"
    promote(models_dir, result.version)
    summary.model_version = result.version
    summary.metrics = result.metrics
    summary.costs = result.costs
    trained_on = f"real outcomes ({outcome}), " if outcome else ""
    stage(
        "train", started, f"model {result.version} ({trained_on}promoted to production)", result.bundle_path
    )

    started = announce("predict")
    bundle = load_bundle(models_dir, "production")
    to_score = read_applications(scoring_data, schema=bundle.schema)
    scored = score(bundle, to_score)
    with results_path(workdir / "results", "json") as path:
        summary.results = write_results(scored, path, "json")
    bad = int(scored.is_bad.sum())
    summary.decisions = {"bad risk": bad, "good risk": len(scored) - bad, "rejected": len(to_score.rejects)}
    stage("predict", started, f"{len(scored)} decisions: {bad} bad risk", summary.results)
    return summary


def _label_and_train(
    applications: Any,
    provider: LabelProvider,
    workdir: Path,
    config: TrainingConfig,
    concurrency: int,
    progress: bool,
    provider_options: dict[str, Any] | None,
    announce: Callable[[str], float],
    stage: Callable[[str, float, str, Path | None], None],
    summary: RunSummary,
    schema: Schema,
) -> tuple[Any, float]:
    """Describe and label with the provider, then train on its labels (measured against outcomes)."""
    started = announce("describe + label")
    labels = label_applications(
        applications,
        provider,
        concurrency=concurrency,
        cache_path=workdir / "label-cache.sqlite",
        progress=progress,
        **(provider_options or {}),
    )
    labels_path = write_labels(labels, workdir / "labels.csv")
    counts = labels["target"].value_counts().to_dict()
    stage(
        "describe + label",
        started,
        f"{getattr(provider, 'name', provider)}: {counts.get('bad risk', 0)} bad risk, {counts.get('good risk', 0)} good risk",
        labels_path,
    )
    if applications.has_outcome:
        truth = applications.outcome().astype(str).map({"good": "good risk", "bad": "bad risk"})
        summary.label_agreement = agreement(
            labels["target"].tolist(),
            truth.tolist(),
            measured_against=f"{applications.outcome_column} (real outcome)",
        ).as_dict()

    started = announce("train")
    return train_from_file(labels_path, config, workdir / "models", progress=progress, schema=schema), started
