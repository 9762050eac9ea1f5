"""Fixtures shared by every test area: data paths, a small real model bundle, a real browser.

The browser is Debian's chromium driven by Playwright (no browser download), one per session: the
sync API runs one Playwright at a time. A machine without it fails the page tests with the command
that installs it: the page is not tested by skipping it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "src" / "preauth" / "data"
ORIGINAL = ROOT.parent / "shared" / "data" / "original"
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def bundled_data() -> Path:
    return DATA / "german_credit_data.csv"


@pytest.fixture(scope="session")
def bundled_risk() -> Path:
    return DATA / "german_credit_risk.csv"


@pytest.fixture(scope="session")
def original_dir() -> Path:
    """The original pipeline's own files, read in place (never copied into the project)."""
    if not ORIGINAL.is_dir():
        pytest.skip(f"the original pipeline's files are not at {ORIGINAL}")
    return ORIGINAL


@pytest.fixture(scope="session")
def small_models_dir(tmp_path_factory: pytest.TempPathFactory, bundled_risk: Path) -> Path:
    """A real bundle: XGBoost fitted on the bundled data's real outcomes, saved the normal way.

    Fitted directly (no search) so that tests of scoring do not depend on the training stage.
    """
    import xgboost as xgb

    from preauth.applications import GERMAN, feature_columns, read_applications
    from preauth.bundles import save_bundle
    from preauth.features import encode, feature_types
    from preauth.referral import SEEN_KEY, seen_in_training

    applications = read_applications(bundled_risk)
    columns = feature_columns()
    matrix = encode(applications.frame, columns)
    y = (applications.frame["Risk"] == "bad").to_numpy().astype(np.float32)
    data = xgb.DMatrix(
        matrix, label=y, feature_types=feature_types(columns), enable_categorical=True, feature_names=columns
    )
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.1, "max_cat_to_onehot": 1, "seed": 0}
    booster = xgb.train(params, data, 60)
    models = tmp_path_factory.mktemp("models")
    save_bundle(
        models,
        booster,
        features=columns,
        threshold=0.35,
        meta={
            "params": params,
            "metrics": {"measured_against": "Risk (test fixture)"},
            SEEN_KEY: seen_in_training(applications.frame, columns, GERMAN),
        },
    )
    return models


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the page is tested in a real browser. "
            "Install it with: apt-get update && apt-get install -y chromium"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS)
        try:
            yield launched
        finally:
            launched.close()
