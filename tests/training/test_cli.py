"""`preauth train` and `preauth models` through the real CLI, and bundles that must not load."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from training_helpers import make_labels_file

from preauth.bundles import load_bundle
from preauth.cli import cli
from preauth.errors import ModelBundleError

PREAUTH = Path(sys.executable).parent / "preauth"
ORIGINAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "original"
WIDE = {"COLUMNS": "200"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([str(PREAUTH), *args], capture_output=True, text=True, timeout=300, env=env)


def test_train_end_to_end_shows_both_labellings(tmp_path: Path, labels_file: Path) -> None:
    models = tmp_path / "models"
    done = run("--models-dir", str(models), "train", str(labels_file), "--trials", "3", "--folds", "3")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "990 used" in out and "10 unlabeled" in out
    assert "vs labels from rules/rubric-v1" in out and "vs real outcome (Risk)" in out
    assert "Cohen's kappa" in out and "ROC AUC" in out and "Train − validation AUC gap" in out
    assert "version v1" in out
    meta = json.loads((models / "v1" / "bundle.json").read_text())
    low, high = meta["metrics"]["holdout"]["intervals"]["roc_auc"]
    assert f"{meta['metrics']['holdout']['roc_auc']:.3f} [{low:.3f}–{high:.3f}]" in out
    assert "95% bootstrap interval" in out and "optimistic" in out
    assert "completed trials" in out and "Shipped model: refit on all 990 rows" in out
    assert (
        "Monotone constraints on (Saving accounts decreasing, Checking account decreasing, "
        "Credit amount increasing, Duration increasing)"
    ) in out
    threshold = meta["threshold"]
    assert (
        f"Threshold: {threshold:.3f} (calibrated p(bad risk) ≥ threshold → refuse; the lowest expected "
        "cost where approving a bad applicant costs 5, refusing a good one costs 1)"
    ) in out
    assert "Calibration: " in out
    assert "perfectly calibrated would show " in out
    assert "Baselines vs labels from rules/rubric-v1 (198 holdout rows)" in out
    assert "approve everyone" in out and "logistic regression" in out
    assert (models / "v1" / "model.ubj").is_file()
    assert "3/3" in done.stderr  # the progress bar


def test_train_the_original_pipelines_labels_directly(tmp_path: Path) -> None:
    labels = ORIGINAL / "credit_data_with_targets.csv"
    if not labels.exists():
        pytest.skip(f"the original pipeline's files are not at {ORIGINAL}")
    result = CliRunner().invoke(
        cli,
        [
            "--models-dir",
            str(tmp_path),
            "train",
            str(labels),
            "--trials",
            "2",
            "--folds",
            "3",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "v1" / "bundle.json").read_text())
    assert meta["label_provenance"]["counts"]["used"] == 1000
    assert meta["label_provenance"]["counts"]["bad_risk"] == 274
    assert meta["metrics"]["measured_against"] == "labels from credit_data_with_targets.csv"
    assert meta["metrics"]["against_risk"] is None  # that file has no Risk column


@pytest.fixture
def no_target(tmp_path: Path, risk_file: Path) -> Path:
    return Path(shutil.copy(risk_file, tmp_path / "apps.csv"))


def _labels_with_blank(path: Path, column: str) -> Path:
    """A labels file whose ``column`` is empty on every row."""
    make_labels_file(path)
    table = pd.read_csv(path, keep_default_na=False, dtype=str)
    table[column] = ""
    table.to_csv(path, index=False)
    return path


@pytest.fixture
def all_unlabeled(tmp_path: Path) -> Path:
    return _labels_with_blank(tmp_path / "labels.csv", "target")


@pytest.fixture
def all_rejected(tmp_path: Path) -> Path:
    return _labels_with_blank(tmp_path / "labels.csv", "Duration")


@pytest.fixture
def without_risk(tmp_path: Path) -> Path:
    return make_labels_file(tmp_path / "labels.csv", with_risk=False)


@pytest.mark.parametrize(
    ("fixture", "extra", "message"),
    [
        ("no_target", [], "no 'target' column"),
        ("all_unlabeled", [], "no labeled rows to train on (1000 unlabeled, 0 rejected)"),
        # Once without a word on why every row was refused.
        (
            "all_rejected",
            [],
            "no labeled rows to train on (0 unlabeled, 1000 rejected); the first: row 1, column 'Duration': missing value",
        ),
        ("without_risk", ["--target", "risk"], "no 'Risk' column: --target risk needs the real outcome"),
        ("labels_file", ["--exclude", "Income"], "--exclude: unknown column 'Income'"),
        ("labels_file", ["--include", "Salary"], "--include: unknown column 'Salary'"),
    ],
)
def test_bad_train_input_is_one_line_and_exit_2(
    request: pytest.FixtureRequest, tmp_path: Path, fixture: str, extra: list[str], message: str
) -> None:
    path: Path = request.getfixturevalue(fixture)
    result = CliRunner().invoke(
        cli, ["--models-dir", str(tmp_path / "m"), "train", str(path), "--trials", "2", *extra]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("preauth: error: ")
    assert message in lines[0]
    if fixture != "labels_file":
        assert str(path) in lines[0]  # names the file
    assert "Traceback" not in result.output
    assert not (tmp_path / "m").exists() or not list((tmp_path / "m").glob("v*"))


def test_missing_labels_file_is_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "file not found" in result.stderr


# --------------------------------------------------------------------------------------------
# preauth models


def test_models_list_show_promote(tmp_path: Path, bundle_run) -> None:
    models = tmp_path / "models"
    shutil.copytree(bundle_run.bundle_path.parent, models)
    runner = CliRunner()
    listed = runner.invoke(cli, ["--models-dir", str(models), "models", "list"], env=WIDE)
    assert listed.exit_code == 0, listed.output
    auc = bundle_run.metrics["holdout"]["roc_auc"]
    assert "v1" in listed.output and f"{auc:.3f}" in listed.output and "production" not in listed.output

    promoted = runner.invoke(cli, ["--models-dir", str(models), "models", "promote", "v1"])
    assert promoted.exit_code == 0 and "production → v1" in promoted.output
    assert json.loads((models / "aliases.json").read_text()) == {"production": "v1"}
    listed = runner.invoke(cli, ["--models-dir", str(models), "models", "list"], env=WIDE)
    assert "production" in listed.output

    shown = runner.invoke(cli, ["--models-dir", str(models), "models", "show", "production"])
    assert shown.exit_code == 0
    meta = json.loads(shown.output)
    assert meta["version"] == "v1" and "holdout.parquet" in meta["files"]
    assert meta["metrics"]["holdout"]["roc_auc"] == pytest.approx(auc)

    missing = runner.invoke(cli, ["--models-dir", str(models), "models", "promote", "v9"])
    assert missing.exit_code == 3 and "no model 'v9'" in missing.stderr


def test_models_list_on_an_empty_directory(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--models-dir", str(tmp_path), "models", "list"])
    assert result.exit_code == 0 and "no models" in result.output


# --------------------------------------------------------------------------------------------
# Bundles that must be refused


@pytest.fixture
def bundle_copy(tmp_path: Path, bundle_run) -> Path:
    models = tmp_path / "models"
    shutil.copytree(bundle_run.bundle_path, models / "v1")
    return models


def _edit_meta(models: Path, change) -> None:
    path = models / "v1" / "bundle.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def test_a_good_copy_loads(bundle_copy: Path) -> None:
    bundle = load_bundle(bundle_copy, "v1")
    assert bundle.version == "v1" and "Sex" not in bundle.features


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda m: _edit_meta(m, lambda meta: meta.update(format_version=99)),
            "bundle format 99 is not supported",
        ),
        (lambda m: _edit_meta(m, lambda meta: meta.update(format="other")), "not a preauth model bundle"),
        (lambda m: (m / "v1" / "model.ubj").unlink(), "cannot load model.ubj"),
        (lambda m: (m / "v1" / "model.ubj").write_bytes(b"not a model"), "cannot load model.ubj"),
        (
            lambda m: _edit_meta(m, lambda meta: meta.update(features=["Age", "Income"])),
            "are not in this schema",
        ),
        (
            lambda m: _edit_meta(m, lambda meta: meta["features"].remove("Duration")),
            "feature types or category levels differ",
        ),
        (
            lambda m: _edit_meta(m, lambda meta: meta.update(features=["Job", "Age", *meta["features"][2:]])),
            "the booster's features",
        ),
        (
            lambda m: _edit_meta(m, lambda meta: meta["category_levels"]["Housing"].reverse()),
            "category levels differ",
        ),
        (lambda m: (m / "v1" / "bundle.json").unlink(), "v1: not a model bundle"),
    ],
    ids=[
        "format-version",
        "format",
        "missing-model",
        "corrupt-model",
        "unknown-feature",
        "fewer-features",
        "swapped-features",
        "levels",
        "missing-meta",
    ],
)
def test_incompatible_bundles_are_refused(bundle_copy: Path, damage, message: str) -> None:
    damage(bundle_copy)
    with pytest.raises(ModelBundleError, match=message):
        load_bundle(bundle_copy, "v1")
    result = CliRunner().invoke(cli, ["--models-dir", str(bundle_copy), "models", "promote", "v1"])
    assert result.exit_code == 3
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (bundle_copy / "aliases.json").exists()


def test_a_damaged_aliases_file_is_one_line(bundle_copy: Path) -> None:
    (bundle_copy / "aliases.json").write_text('{"production": ')
    with pytest.raises(ModelBundleError, match="unreadable aliases file"):
        load_bundle(bundle_copy)
    result = CliRunner().invoke(cli, ["--models-dir", str(bundle_copy), "models", "promote", "v1"])
    assert result.exit_code == 3
    assert "aliases.json: unreadable aliases file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_search_rows_without_dask_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "labels.csv"), "--search-rows", "500"])
    assert result.exit_code == 2
    assert "--search-rows goes with --dask" in result.output


def test_a_threshold_that_decides_nearly_everyone_alike_is_pointed_out() -> None:
    """On a lender's data where bad risk is common, the 5:1 cost refused 499 of 500 holdout
    applicants, and only the confusion table said so."""
    from preauth.evaluation import one_sided

    holdout = {"n": 500, "measured_against": "real outcome (Status)"}
    refusing = one_sided({**holdout, "confusion": {"tn": 2, "fp": 301, "fn": 0, "tp": 197}})
    assert refusing is not None
    assert refusing.startswith(
        "Note: this threshold refuses 498 of the 500 holdout applicants (100%), "
        "measured against real outcome (Status)."
    )
    assert "pass --threshold" in refusing
    approving = one_sided({**holdout, "confusion": {"tn": 300, "fp": 10, "fn": 190, "tp": 0}})
    assert approving is not None and "approves 490 of the 500" in approving
    assert one_sided({**holdout, "confusion": {"tn": 200, "fp": 100, "fn": 80, "tp": 120}}) is None
