"""Fixtures for the service: a real small model, real uvicorn servers on free ports, real databases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from service_helpers import running

from preauth import applications, bundles, features, referral
from preauth.pipeline import bundled_data
from preauth.settings import Settings

DATA = bundled_data("german_credit_risk.csv")
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def train_bundle(
    models_dir: Path, *, rounds: int, depth: int, threshold: float, seed: int = 0, seen: bool = False
) -> Path:
    """A real (small) XGBoost model on the bundled data, saved as a real bundle.

    ``seen`` writes what training saw (as ``preauth train`` does), so the model refers.
    """
    import xgboost as xgb

    apps = applications.read_applications(DATA)
    columns = applications.feature_columns()
    matrix = features.encode(apps.frame, columns)
    label = (apps.frame["Risk"] == "bad").to_numpy(dtype=np.float32)
    data = xgb.DMatrix(
        matrix,
        label=label,
        feature_names=columns,
        feature_types=features.feature_types(columns),
        enable_categorical=True,
    )
    params = {"objective": "binary:logistic", "max_depth": depth, "eta": 0.2, "nthread": 1, "seed": seed}
    booster = xgb.train(params, data, num_boost_round=rounds)
    meta: dict[str, Any] = {"params": params, "metrics": {"measured_against": "real Risk (test fixture)"}}
    if seen:
        meta[referral.SEEN_KEY] = referral.seen_in_training(apps.frame, columns, applications.GERMAN)
    return bundles.save_bundle(models_dir, booster, features=columns, threshold=threshold, meta=meta)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1 (production) and v2, different enough that a promotion is visible in the answers."""
    root = tmp_path_factory.mktemp("models")
    train_bundle(root, rounds=40, depth=3, threshold=0.5)
    train_bundle(root, rounds=60, depth=4, threshold=0.4, seed=1)
    bundles.promote(root, "v1")
    return root


@pytest.fixture(scope="session")
def referring_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model that knows what training saw, so it refers applications outside it."""
    root = tmp_path_factory.mktemp("referring")
    train_bundle(root, rounds=40, depth=3, threshold=0.5, seen=True)
    bundles.promote(root, "v1")
    return root


@pytest.fixture
def own_models(tmp_path: Path, models_dir: Path) -> Path:
    """A private copy of the models directory, for tests that promote."""
    import shutil

    target = tmp_path / "models"
    shutil.copytree(models_dir, target)
    return target


@dataclass
class Running:
    url: str
    app: Any
    settings: Settings

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)


@pytest.fixture
def serve(tmp_path: Path, models_dir: Path) -> Iterator[Callable[..., Running]]:
    """Start a real uvicorn server (in a thread, on a free port) for an app built from settings."""
    from preauth.service.app import create_app

    stack = ExitStack()

    def start(**overrides: Any) -> Running:
        values: dict[str, Any] = {
            "models_dir": models_dir,
            "database_url": f"sqlite:///{tmp_path / 'decisions.db'}",
            "sagemaker_model_dir": None,
        }
        values.update(overrides)
        reload_interval = values.pop("reload_interval", 0.2)
        settings = Settings(**values)
        app = create_app(settings, reload_interval=reload_interval)
        url = stack.enter_context(running(app))
        return Running(url, app, settings)

    with stack:
        yield start


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A schema of its own on the local PostgreSQL server, dropped afterwards; skip when none runs."""
    yield from _private_schema()


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """Like ``postgres_url``, but a schema for this test alone: it starts with no decisions."""
    yield from _private_schema()


def _private_schema() -> Iterator[str]:
    try:
        import psycopg

        admin = psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/test", autocommit=True, connect_timeout=3
        )
    except Exception as error:  # no server on this machine
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432/test ({type(error).__name__}: {error})")
    schema = f"preauth_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()
