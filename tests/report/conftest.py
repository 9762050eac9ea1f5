"""Fixtures for the report tests: model bundles trained for real on the bundled German Credit data."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from bundle_factory import build_bundle, labels_file  # noqa: E402


@pytest.fixture(scope="session")
def llm_bundle(tmp_path_factory: pytest.TempPathFactory, bundled_risk: Path) -> Path:
    """A bundle trained on provider-style labels, with Risk in the file for measuring only.

    Trained by `preauth.training` (which writes report.html itself) when it is installed;
    otherwise by the factory, which writes the same files by the bundle contract.
    """
    work = tmp_path_factory.mktemp("llm")
    if importlib.util.find_spec("preauth.training") is None:
        return build_bundle(work / "models")
    from preauth.training import TrainingConfig, train_from_file

    labels = labels_file(bundled_risk, work / "labels.csv")
    result = train_from_file(
        labels, TrainingConfig(trials=5, folds=3, seed=3), work / "models", progress=False
    )
    return Path(result.bundle_path)


@pytest.fixture(scope="session")
def risk_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle trained on the real outcomes themselves (no provider labels)."""
    return build_bundle(tmp_path_factory.mktemp("risk") / "models", target="risk", trials=4)


@pytest.fixture(scope="session")
def llm_holdout(llm_bundle: Path) -> pd.DataFrame:
    return pd.read_parquet(llm_bundle / "holdout.parquet")
