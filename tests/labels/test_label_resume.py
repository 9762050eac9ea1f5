"""A labelling run killed with SIGKILL mid-way resumes exactly: nothing asked twice, nothing lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from openai_server import ChatServer

N = 40


def run_label(server: ChatServer, source: Path, output: Path, cache: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-c",
        "from preauth.cli import main; main()",
        "label",
        str(source),
        "-o",
        str(output),
        "--llm",
        "openai:test-model",
        "--base-url",
        server.url,
        "--cache",
        str(cache),
        "--concurrency",
        "4",
        "--no-progress",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREAUTH_", "OPENAI_"))}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def cached(cache: Path) -> int:
    with sqlite3.connect(cache) as db:
        return int(db.execute("SELECT COUNT(*) FROM completions").fetchone()[0])


def test_killed_run_resumes_exactly(chat_server: ChatServer, tmp_path: Path) -> None:
    source = tmp_path / "apps.csv"
    data = Path(__file__).resolve().parents[2] / "src" / "preauth" / "data" / "german_credit_risk.csv"
    pd.read_csv(data, dtype=str, keep_default_na=False).head(N).to_csv(source, index=False)
    output, cache = tmp_path / "labels.csv", tmp_path / "cache.sqlite"
    chat_server.latency = 0.05

    killed = run_label(chat_server, source, output, cache)
    deadline = time.monotonic() + 60
    while chat_server.count() < N and time.monotonic() < deadline:  # about half of the 2N calls
        time.sleep(0.005)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert not output.exists()  # nothing half-written
    assert not list(tmp_path.glob(".labels.csv.*"))
    first_calls = chat_server.count()
    saved = cached(cache)
    assert 0 < saved < 2 * N
    assert first_calls - saved <= 4  # only the calls in flight at the kill were lost

    resumed = run_label(chat_server, source, output, cache)
    stdout, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr.decode()
    assert chat_server.count() - first_calls == 2 * N - saved  # exactly the missing work, no more
    assert cached(cache) == 2 * N
    labels = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert len(labels) == N and labels["id"].is_unique
    assert (labels["target"].isin(["good risk", "bad risk"])).all()
    assert f"{2 * N - saved} calls, {saved} cached" in stderr.decode()

    again = run_label(chat_server, source, output, cache)
    _, stderr = again.communicate(timeout=120)
    assert again.returncode == 0
    assert chat_server.count() - first_calls == 2 * N - saved  # a third run asks nothing at all
    assert f"0 calls, {2 * N} cached" in stderr.decode()


def test_ctrl_c_stops_promptly_and_keeps_what_was_answered(chat_server: ChatServer, tmp_path: Path) -> None:
    source = tmp_path / "apps.csv"
    data = Path(__file__).resolve().parents[2] / "src" / "preauth" / "data" / "german_credit_risk.csv"
    pd.read_csv(data, dtype=str, keep_default_na=False).head(N).to_csv(source, index=False)
    output, cache = tmp_path / "labels.csv", tmp_path / "cache.sqlite"
    chat_server.latency = 0.3  # the whole run would take about 6 s
    process = run_label(chat_server, source, output, cache)
    deadline = time.monotonic() + 60
    while chat_server.count() < 8 and time.monotonic() < deadline:
        time.sleep(0.005)
    interrupted = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    assert time.monotonic() - interrupted < 3.0  # in-flight calls finish; nothing new is started
    assert process.returncode != 0
    assert not output.exists()
    assert chat_server.count() <= 8 + 4
    assert cached(cache) >= 8
