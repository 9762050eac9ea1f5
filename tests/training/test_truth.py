"""train --truth: a model trained on provider labels, measured against real outcomes from another file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from test_cli import run
from training_helpers import DATA, FAST, make_labels_file

from preauth.training import RISK_MEASURE, load_labels, train


def _truth_with_ids(path: Path, seed: int = 3) -> Path:
    frame = pd.read_csv(DATA / "german_credit_risk.csv", index_col=0)
    truth = pd.DataFrame({"id": [f"app-{i}" for i in range(len(frame))], "Risk": frame["Risk"].to_numpy()})
    truth.sample(frac=1.0, random_state=seed).to_csv(path, index=False)  # another order: the ids join
    return path


def test_truth_joined_by_id_measures_like_a_risk_column(tmp_path: Path, trained) -> None:
    labels = make_labels_file(tmp_path / "labels.csv", with_risk=False, unlabeled=10)
    data = load_labels(labels, truth=_truth_with_ids(tmp_path / "outcomes.csv"))
    assert data.provenance["truth"] == {
        "source": "Risk in outcomes.csv, joined by id",
        "known": 990,
        "rejected": 0,
        "rejected_rows": [],
    }
    with_risk = load_labels(make_labels_file(tmp_path / "with-risk.csv", unlabeled=10))
    np.testing.assert_array_equal(data.risk, with_risk.risk)
    assert data.provenance["agreement_with_risk"] == with_risk.provenance["agreement_with_risk"]
    model = train(data, FAST)
    assert model.metrics["against_risk"]["measured_against"] == RISK_MEASURE
    assert model.metrics["against_risk"] == trained.metrics["against_risk"]  # the same rows, the same model
    assert model.metrics["holdout"] == trained.metrics["holdout"]


def test_truth_joined_by_row_order_when_a_file_has_no_ids(tmp_path: Path) -> None:
    labels = make_labels_file(tmp_path / "labels.csv", with_risk=False)
    table = pd.read_csv(labels).drop(columns=["id"])
    table.to_csv(labels, index=False)
    data = load_labels(labels, truth=DATA / "german_credit_risk.csv")
    assert data.provenance["truth"]["source"] == "Risk in german_credit_risk.csv, joined by row order"
    frame = pd.read_csv(DATA / "german_credit_risk.csv", index_col=0)
    np.testing.assert_array_equal(data.risk, (frame["Risk"] == "bad").to_numpy(dtype=float))


def test_bad_truth_is_one_line_and_exit_2(tmp_path: Path) -> None:
    labels = make_labels_file(tmp_path / "labels.csv", with_risk=False)
    table = pd.read_csv(labels).drop(columns=["id"])
    table.iloc[:500].to_csv(labels, index=False)
    models = str(tmp_path / "models")
    short = run("--models-dir", models, "train", str(labels), "--truth", str(DATA / "german_credit_risk.csv"))
    assert short.returncode == 2 and short.stdout == ""
    assert short.stderr.strip().count("\n") == 0
    assert "500 rows here but 1000 in" in short.stderr and "joined by order" in short.stderr
    risk = run("--models-dir", models, "train", str(labels), "--target", "risk", "--truth", str(labels))
    assert risk.returncode == 2 and "with --target risk the outcome already is the label" in risk.stderr
    assert not (tmp_path / "models").exists()


def test_a_refused_row_of_the_truth_file_is_named_and_makes_exit_2(tmp_path: Path) -> None:
    """``train --truth`` once left a truth row with ``Risk = maybe`` out without a word (exit 0),
    where ``agreement`` with the same files names it and exits 2."""
    labels = make_labels_file(tmp_path / "labels.csv", with_risk=False)
    truth = _truth_with_ids(tmp_path / "outcomes.csv")
    table = pd.read_csv(truth, dtype=str)
    table.loc[4, "Risk"] = "maybe"
    table.to_csv(truth, index=False)
    data = load_labels(labels, truth=truth)
    assert data.provenance["truth"]["known"] == 999
    assert data.provenance["truth"]["rejected"] == 1
    expected = f"{truth}, row 5, column 'Risk': 'maybe' is not one of: good, bad"
    assert data.provenance["truth"]["rejected_rows"] == [expected]
    result = run(
        "--models-dir",
        str(tmp_path / "models"),
        "train",
        str(labels),
        "--truth",
        str(truth),
        "--trials",
        "1",
        "--no-progress",
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"preauth: rejected: {expected}"]
    assert (
        "Real outcomes: Risk in outcomes.csv, joined by id (999 of the labelled applicants known)"
        in result.stdout
    )
