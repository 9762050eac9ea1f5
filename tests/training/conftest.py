"""Fixtures for the training tests: labels files built from the bundled data, and a few fast runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from training_helpers import DATA, FAST, make_labels_file

from preauth.training import load_labels, train, train_from_file


@pytest.fixture(scope="session")
def labels_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_labels_file(tmp_path_factory.mktemp("labels") / "labels.csv", unlabeled=10)


@pytest.fixture(scope="session")
def risk_file() -> Path:
    return DATA / "german_credit_risk.csv"


@pytest.fixture(scope="session")
def trained(labels_file: Path):
    """One pure training run (no files written) shared by the read-only tests."""
    return train(load_labels(labels_file), FAST)


@pytest.fixture(scope="session")
def bundle_run(labels_file: Path, tmp_path_factory: pytest.TempPathFactory):
    """One full run through the library front door, writing a bundle."""
    models = tmp_path_factory.mktemp("models")
    return train_from_file(labels_file, FAST, models, progress=False)
