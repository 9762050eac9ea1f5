"""A lender's cost matrix ([costs] in its schema) chooses the threshold, and travels with the bundle.

German Credit's 5:1 (approving a bad applicant costs 5, refusing a good one 1) once was a constant
in five places; a lender whose mistakes cost otherwise got Hofmann's threshold and Hofmann's cost
figures, and only ``--threshold`` by hand as a way out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from training_helpers import DATA, FAST

from preauth.applications import GERMAN, Costs, parse_schema
from preauth.bundles import load_bundle, read_meta
from preauth.challengers import bundle_costs
from preauth.training import train_from_file

EVEN = Costs(approve_bad=1.0, refuse_good=1.0)


def test_the_schemas_costs_choose_the_threshold_and_travel_with_the_bundle(tmp_path: Path) -> None:
    lender = dataclasses.replace(GERMAN, name="even_costs", costs=EVEN)
    assert parse_schema(lender.to_toml()).costs == EVEN  # written as [costs], read back
    assert "[costs]" not in GERMAN.to_toml()  # the default writes nothing: fingerprints stay
    labels = DATA / "german_credit_risk.csv"
    config = dataclasses.replace(FAST, target="risk", bootstrap=0)
    hofmann = train_from_file(labels, config, tmp_path / "models", progress=False)
    even = train_from_file(labels, config, tmp_path / "models", progress=False, schema=lender)
    # Refusing a good applicant now costs as much as approving a bad one: the cut moves up from
    # about 1/6 towards 1/2, and far fewer applicants are refused.
    assert hofmann.threshold < 0.3 < even.threshold
    assert hofmann.costs == GERMAN.costs and even.costs == EVEN
    rule = read_meta(even.bundle_path)["threshold_rule"]
    assert (rule["cost_false_negative"], rule["cost_false_positive"]) == (1.0, 1.0)
    assert rule["costs"] == "approving a bad applicant costs 1, refusing a good one costs 1"
    assert load_bundle(tmp_path / "models", even.version).schema.costs == EVEN
    assert bundle_costs(tmp_path / "models", even.version).costs == EVEN
    # Every cost figure is at the lender's costs: refusing everyone costs the share of good risk.
    baseline = even.metrics["baselines"]["holdout"][even.metrics["measured_against"]]
    good_share = 1 - even.metrics["holdout"]["positives"] / even.metrics["holdout"]["n"]
    assert baseline["refuse_all_cost"] == good_share
    confusion, n = even.metrics["holdout"]["confusion"], even.metrics["holdout"]["n"]
    assert even.metrics["holdout"]["expected_cost"] == (confusion["fn"] + confusion["fp"]) / n
    assert even.report_path is not None and hofmann.report_path is not None
    page = even.report_path.read_text(encoding="utf-8")  # written by train, as render_report makes it
    assert "Cost per applicant (1:1)" in page
    assert "approving a bad applicant costs 1, refusing a good one costs 1" in page
    assert "Cost per applicant (5:1)" in hofmann.report_path.read_text(encoding="utf-8")
