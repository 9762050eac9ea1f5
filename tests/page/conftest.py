"""Fixtures for the page tests: a real model, a real `preauth serve` with API keys on, a real browser.

The browser (``browser``, shared with other areas) is in ``tests/conftest.py``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "report"))
from rubric_labels import labels_file  # noqa: E402
from serving_support import preauth_serve  # noqa: E402

API_KEY = "page-test-key-7f3a"


@dataclass
class Server:
    url: str
    models_dir: Path
    database: Path
    log: Path

    def client(self, key: str | None = API_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture(scope="session")
def page_models(tmp_path_factory: pytest.TempPathFactory, bundled_risk: Path) -> Path:
    """A bundle trained by `preauth train` on provider-style labels (Risk kept for measuring)."""
    work = tmp_path_factory.mktemp("page-model")
    labels = labels_file(bundled_risk, work / "labels.csv")
    models = work / "models"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from preauth.cli import main; main()",
            "--models-dir",
            str(models),
            "train",
            str(labels),
            "--trials",
            "4",
            "--folds",
            "3",
            "--seed",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (models / "v1" / "report.html").exists()
    return models


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, page_models: Path) -> Iterator[Server]:
    """`preauth serve` on a free port with API keys switched on, until the session ends."""
    work = tmp_path_factory.mktemp("page-server")
    with preauth_serve(page_models, work, api_keys=f"other-key,{API_KEY}") as url:
        yield Server(url, page_models, work / "decisions.db", work / "serve.log")


@pytest.fixture
def page(browser: object, server: Server) -> Iterator[object]:
    """A fresh tab (its own sessionStorage) on the served page, the API key entered when asked."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)  # type: ignore[attr-defined]
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.goto(server.url + "/")
    tab.wait_for_selector("#key-dialog[open]")
    tab.fill("#key-input", API_KEY)
    tab.click("#key-save")
    tab.wait_for_function("document.querySelector('#model-badge').textContent.startsWith('model ')")
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture(scope="session")
def api_key() -> str:
    return API_KEY


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")
