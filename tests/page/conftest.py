"""Fixtures for the page tests: a real model, a real `preauth serve` with API keys on, a real browser.

The browser is Debian's chromium driven by Playwright (no browser download). A machine without it
fails these tests with the command that installs it: the page is not tested by skipping it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "report"))
from rubric_labels import labels_file  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
API_KEY = "page-test-key-7f3a"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@dataclass
class Server:
    url: str
    models_dir: Path
    database: Path
    log: Path

    def client(self, key: str | None = API_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    port = free_port()
    database = work / "decisions.db"
    log = work / "serve.log"
    env = {
        **os.environ,
        "PREAUTH_API_KEYS": f"other-key,{API_KEY}",
        "PREAUTH_DATABASE_URL": f"sqlite:///{database}",
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from preauth.cli import main; main()",
                "--models-dir",
                str(page_models),
                "serve",
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=work,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"preauth serve did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield Server(url, page_models, database, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
