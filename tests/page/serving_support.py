"""Starting and stopping a real `preauth serve` for the page tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def preauth_serve(models: Path, work: Path, *, api_keys: str | None) -> Iterator[str]:
    """`preauth serve` on a free port of 127.0.0.1 with its own SQLite store; yields its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREAUTH_")}
    env["PREAUTH_DATABASE_URL"] = f"sqlite:///{work / 'decisions.db'}"
    if api_keys:
        env["PREAUTH_API_KEYS"] = api_keys
    log = work / "serve.log"
    command = [sys.executable, "-c", "from preauth.cli import main; main()", "--models-dir", str(models)]
    command += ["serve", "--port", str(port), "--host", "127.0.0.1"]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work)
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
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
