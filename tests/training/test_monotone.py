"""Monotone constraints: no applicant is ever approved by asking for more money or a longer term,
or refused for a larger balance."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from training_helpers import FAST

from preauth.applications import FIELDS, Field, read_applications, validate
from preauth.bundles import load_bundle
from preauth.errors import ConfigurationError
from preauth.features import monotone_constraints, monotone_direction, xgboost_constraints
from preauth.scoring import score
from preauth.service.intake import check_records
from preauth.service.serving import Request, Served
from preauth.training import load_labels, train

APPLICANTS = 120
GRIDS: dict[str, list[object]] = {
    "Credit amount": [*np.linspace(250, 20000, 25), 50_000, 250_000, 1_000_000],
    "Duration": [*np.arange(4, 73, 4), 96, 120],
    "Saving accounts": ["little", "moderate", "quite rich", "rich"],
    "Checking account": ["little", "moderate", "rich"],
}
DIRECTIONS = {
    "Saving accounts": "decreasing",
    "Checking account": "decreasing",
    "Credit amount": "increasing",
    "Duration": "increasing",
}


def test_german_fields_carry_their_directions() -> None:
    directions = {f.name: f.direction for f in FIELDS if f.direction}
    assert directions == DIRECTIONS
    columns = ["Age", "Credit amount", "Housing", "Duration", "Checking account"]
    assert xgboost_constraints(columns) == "(0,1,0,1,-1)"
    assert monotone_constraints(columns) == {
        "Credit amount": "increasing",
        "Duration": "increasing",
        "Checking account": "decreasing",
    }


def test_a_direction_on_a_category_is_refused_with_its_name() -> None:
    purpose = Field("Purpose", "purpose", "category", "x", "car", categories=("car",), direction="increasing")
    with pytest.raises(ConfigurationError, match="'Purpose' is a category: its levels have no order"):
        monotone_direction(purpose)
    decreasing = Field("Age", "age", "integer", "x", 30, direction="decreasing")
    assert monotone_direction(decreasing) == -1
    ordered = dataclasses.replace(purpose, categories=("car", "house"), ordered=True, direction="decreasing")
    assert monotone_direction(ordered) == -1


def _applicants(bundled_risk: Path) -> pd.DataFrame:
    return read_applications(bundled_risk).given.iloc[:APPLICANTS]


def _against(curves: np.ndarray, direction: str) -> np.ndarray:
    """Rows whose probability moves against ``direction`` anywhere as the swept value rises."""
    steps = np.diff(curves, axis=1)
    return np.any(steps < 0 if direction == "increasing" else steps > 0, axis=1)


def test_no_applicant_moves_against_a_fields_direction_through_predict_and_the_service(
    bundle_run, bundled_risk: Path
) -> None:
    bundle = load_bundle(bundle_run.bundle_path.parent, bundle_run.version)
    assert bundle.meta["params"]["monotone_constraints"] == xgboost_constraints(bundle.features)
    assert bundle.calibration.method != "none"  # the sweep goes through the calibration map too
    served = Served(bundle)
    given = _applicants(bundled_risk)
    for name, grid in GRIDS.items():
        batch, service = [], []
        for value in grid:
            swept = given.copy()
            swept[name] = value
            batch.append(score(bundle, validate(swept)).probability)
            records = swept.drop(columns=["Risk"], errors="ignore").to_dict(orient="records")
            checked = check_records(records)
            assert len(checked.accepted) == len(swept)
            decisions = served.decide_many([(checked.accepted, Request("sweep", "test"))])[0]
            service.append([d["probability"] for d in decisions])
        for curves in (np.column_stack(batch), np.column_stack(service)):
            assert curves.shape == (APPLICANTS, len(grid))
            assert not _against(curves, DIRECTIONS[name]).any(), name
            assert np.ptp(curves.mean(axis=0)) > 0, (
                f"{name}: the model does not use it, so the sweep proves nothing"
            )
            refused = curves >= bundle.threshold
            if DIRECTIONS[name] == "decreasing":  # a larger balance never turns an approval down
                assert not np.any(~refused[:, :-1] & refused[:, 1:]), f"{name}: an approval became a refusal"
            else:
                assert not np.any(refused[:, :-1] & ~refused[:, 1:]), f"{name}: a refusal became an approval"
        np.testing.assert_allclose(np.column_stack(batch), np.column_stack(service), rtol=1e-6)


def test_without_constraints_the_run_says_what_they_would_have_cost(labels_file: Path, trained) -> None:
    free = train(load_labels(labels_file), dataclasses.replace(FAST, monotone=False, trials=2))
    assert "monotone_constraints" not in free.params
    cost = free.search.summary["monotone"]
    assert cost["applied"] is False
    assert cost["directions"] == DIRECTIONS
    assert cost["cv_auc_without"] == pytest.approx(free.search.cv_auc)
    bound = trained.search.summary["monotone"]
    assert bound["applied"] is True and bound["cv_auc_with"] == pytest.approx(trained.search.cv_auc)
    assert 0.5 < bound["cv_auc_without"] <= 1
