"""Batch results refer a borderline decision too: the band the bundle carries, or PREAUTH_REVIEW_BAND."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from preauth.applications import read_applications
from preauth.bundles import load_bundle
from preauth.referral import with_review_band
from preauth.scoring import score


def test_score_refers_within_the_band_and_keeps_the_model_verdict(
    small_models_dir: Path, bundled_data: Path
) -> None:
    bundle = load_bundle(small_models_dir)
    applications = read_applications(bundled_data, schema=bundle.schema)
    plain = score(bundle, applications, explain=True)
    banded = score(with_review_band(bundle, 0.1), applications, explain=True)
    assert plain.decisions is not None and banded.decisions is not None and banded.reasons is not None
    near = abs(banded.probability - bundle.threshold) <= 0.1
    assert 0 < near.sum() < len(near), "the data should have decisions both near and far from the threshold"
    for i, close in enumerate(near):
        band = [r for r in banded.reasons[i] if r["feature"] == "probability"]
        assert (banded.decisions[i] == "refer") == (close or plain.decisions[i] == "refer")
        assert bool(band) == bool(close)
    assert list(banded.is_bad) == list(plain.is_bad)  # the model's own verdict is unchanged


def test_predict_takes_the_band_from_the_environment(
    small_models_dir: Path, bundled_data: Path, tmp_path: Path
) -> None:
    source = tmp_path / "three.csv"
    pd.read_csv(bundled_data, index_col=0).head(3).to_csv(source)
    env = {**os.environ, "PREAUTH_REVIEW_BAND": "0.49"}
    command = [sys.executable, "-m", "preauth", "--models-dir", str(small_models_dir), "predict", str(source)]
    result = subprocess.run(
        [*command, "-o", str(tmp_path), "--explain"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    [path] = tmp_path.glob("*.json")
    decided = json.loads(path.read_text())
    assert [d["decision"] for d in decided] == [
        "refer"
        if abs(d["probability_fraud"] - load_bundle(small_models_dir).threshold) <= 0.49
        else d["decision"]
        for d in decided
    ]
    assert any(d["decision"] == "refer" for d in decided)


def test_models_list_and_show_say_which_band_decides(small_models_dir: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from preauth.cli import cli

    models = tmp_path / "models"
    shutil.copytree(small_models_dir, models)
    meta_file = models / "v1" / "bundle.json"
    older = json.loads(meta_file.read_text())
    assert "review_band" not in older  # the fixture's bundle predates bands
    runner = CliRunner()

    def shown(env: dict[str, str]) -> dict:
        result = runner.invoke(cli, ["--models-dir", str(models), "models", "show", "v1"], env=env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["review_band_in_use"]

    def listed(env: dict[str, str]) -> str:
        result = runner.invoke(
            cli, ["--models-dir", str(models), "models", "list"], env={"COLUMNS": "200", **env}
        )
        assert result.exit_code == 0, result.output
        assert "review band" in result.stdout
        [row] = [line for line in result.stdout.splitlines() if "v1" in line]
        return row

    assert shown({}) == {"band": 0.0, "trained": None, "source": "bundle"}
    assert " none " in listed({})
    meta_file.write_text(json.dumps({**older, "review_band": 0.05}))
    assert shown({}) == {"band": 0.05, "trained": 0.05, "source": "bundle"}
    assert " 0.050 " in listed({})
    override = {"PREAUTH_REVIEW_BAND": "0.2"}
    assert shown(override) == {"band": 0.2, "trained": 0.05, "source": "PREAUTH_REVIEW_BAND"}
    assert "0.200 (PREAUTH_REVIEW_BAND; own 0.050)" in listed(override)
