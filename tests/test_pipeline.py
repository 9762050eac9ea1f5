"""The full chain through the real CLI, as a new user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd


def test_run_chains_every_stage_on_the_bundled_data(tmp_path: Path) -> None:
    work = tmp_path / "work"
    result = subprocess.run(
        [sys.executable, "-m", "preauth", "run", "--workdir", str(work), "--trials", "4", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=600,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )
    assert result.returncode == 0, result.stderr + result.stdout
    labels = pd.read_csv(work / "labels.csv", keep_default_na=False)
    assert len(labels) == 1000 and set(labels["target"]) == {"good risk", "bad risk"}
    assert {"description", "provider", "model", "prompt_version", "raw_answer", "Risk"} <= set(labels.columns)
    aliases = json.loads((work / "models" / "aliases.json").read_text())
    bundle = work / "models" / aliases["production"]
    meta = json.loads((bundle / "bundle.json").read_text())
    assert "Sex" not in meta["features"]
    assert (
        "<html" in (bundle / "report.html").read_text()[:500].lower()
    )  # every training run writes its report
    assert meta["metrics"]["against_risk"]["measured_against"] != meta["metrics"]["measured_against"]
    [results] = (work / "results").glob("inference_results_*.json")
    decisions = json.loads(results.read_text())
    assert len(decisions) == 1000
    assert all(d["target"] in {"good risk", "bad risk"} for d in decisions)
    # The summary says what each number was measured against.
    assert "Provider labels vs Risk (real outcome)" in result.stdout
    assert "vs real outcome" in result.stdout
    low, high = meta["metrics"]["against_risk"]["intervals"]["roc_auc"]
    auc = meta["metrics"]["against_risk"]["roc_auc"]
    assert f"{auc:.3f} [{low:.3f}–{high:.3f}]" in result.stdout  # every holdout figure with its interval
