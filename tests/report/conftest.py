"""Fixtures for the report tests: bundles trained by `preauth.training` on the bundled German Credit data.

Training writes report.html itself (it calls :func:`preauth.report.write_report`), so these
bundles are exactly what a user gets. Few trials and folds keep them fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from preauth.training import TrainingConfig, train_from_file

sys.path.insert(0, str(Path(__file__).parent))
from rubric_labels import labels_file  # noqa: E402


@pytest.fixture(scope="session")
def llm_bundle(tmp_path_factory: pytest.TempPathFactory, bundled_risk: Path) -> Path:
    """Trained on provider-style labels, with Risk in the file for measuring only."""
    work = tmp_path_factory.mktemp("llm")
    labels = labels_file(bundled_risk, work / "labels.csv")
    result = train_from_file(
        labels, TrainingConfig(trials=5, folds=3, seed=3), work / "models", progress=False
    )
    return Path(result.bundle_path)


@pytest.fixture(scope="session")
def risk_bundle(tmp_path_factory: pytest.TempPathFactory, bundled_risk: Path) -> Path:
    """Trained on the real outcomes themselves (no provider labels)."""
    config = TrainingConfig(trials=4, folds=3, seed=4, target="risk")
    result = train_from_file(bundled_risk, config, tmp_path_factory.mktemp("risk") / "models", progress=False)
    return Path(result.bundle_path)


@pytest.fixture(scope="session")
def llm_holdout(llm_bundle: Path) -> pd.DataFrame:
    return pd.read_parquet(llm_bundle / "holdout.parquet")
