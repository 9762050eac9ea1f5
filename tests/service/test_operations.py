"""Operations: promotion under load, SageMaker's model directory, and `preauth serve` itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from service_helpers import application, free_port

from preauth import bundles


def test_promote_takes_effect_under_load_without_dropping_a_request(serve, own_models):
    server = serve(models_dir=own_models, reload_interval=0.1)
    stop = threading.Event()
    seen: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()

    def load() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                answer = client.post("/v1/decisions", json=application())
                with lock:
                    if answer.status_code == 201:
                        seen.append(answer.json()["model_version"])
                    else:
                        failures.append(f"{answer.status_code} {answer.text}")

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    time.sleep(0.5)
    bundles.promote(own_models, "v2")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with lock:
            if seen.count("v2") >= 50:
                break
        time.sleep(0.05)
    stop.set()
    for w in workers:
        w.join()
    assert failures == []
    assert "v1" in seen and seen.count("v2") >= 50
    switched = seen.index("v2")
    assert all(v == "v2" for v in seen[switched + 20 :])  # in-flight v1 answers may trail by a few
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/v1/model").json()["threshold"] == 0.4
        assert 'preauth_model_info{version="v2"} 1.0' in client.get("/metrics").text


def test_serves_from_sagemaker_model_directory(serve, models_dir):
    server = serve(sagemaker_model_dir=models_dir / "v2")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/ping").json()["model_version"] == "v2"


def test_preauth_serve_with_two_workers_and_sagemaker_port(models_dir, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "PREAUTH_SAGEMAKER_MODEL_DIR": str(tmp_path / "no-such-dir"),
        "PREAUTH_DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
        "PREAUTH_MONITOR_INTERVAL_SECONDS": "0.2",
    }
    preauth = [sys.executable, "-c", "from preauth.cli import main; main()"]
    process = subprocess.Popen(
        [*preauth, "--models-dir", str(models_dir), "serve", "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "preauth serve did not come up"
            time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(10):
                assert client.post("/v1/decisions", json=application()).status_code == 201
            assert client.post("/invocations", json=[application()]).status_code == 200
            decided = client.get("/v1/decisions", params={"limit": 500}).json()["decisions"]
            deadline = time.monotonic() + 10
            # the monitoring gauges: refreshed by one worker, one series whichever worker answers
            while "\npreauth_monitored_decisions 11.0\n" not in (text := client.get("/metrics").text):
                assert time.monotonic() < deadline, text[-1500:]
                time.sleep(0.1)
        assert len(decided) == 11
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("preauth_decisions_total{")
        )
        assert counted == 11  # summed over both worker processes
        assert sum(line.startswith("preauth_approve_rate ") for line in text.splitlines()) == 1
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
    assert "Traceback" not in err, err
    assert f"serving model v1 on http://127.0.0.1:{port} (2 workers)" in err
    assert Path(tmp_path / "served.db").exists()


def test_a_broken_promotion_keeps_the_served_model(serve, own_models):
    server = serve(models_dir=own_models, reload_interval=0.05)
    bundles.write_json_atomic(own_models / bundles.ALIASES_FILE, {"production": "v9"})
    time.sleep(0.5)
    with httpx.Client(base_url=server.url) as client:
        assert client.post("/v1/decisions", json=application()).json()["model_version"] == "v1"
        assert client.get("/ping").json()["model_version"] == "v1"
    bundles.promote(own_models, "v2")
    deadline = time.monotonic() + 5
    while httpx.get(f"{server.url}/ping").json()["model_version"] != "v2":
        assert time.monotonic() < deadline, "the fixed alias was not picked up"
        time.sleep(0.05)


def test_request_ids_are_echoed_only_when_tame(serve):
    server = serve()
    with httpx.Client(base_url=server.url) as client:
        tame = client.get("/ping", headers={"X-Request-ID": "abc-123"})
        wild = client.get("/ping", headers={"X-Request-ID": "<script>" + "x" * 100})
    assert tame.headers["x-request-id"] == "abc-123"
    assert wild.headers["x-request-id"] != "<script>" and len(wild.headers["x-request-id"]) == 32


def test_a_damaged_alias_file_is_logged_once_and_the_model_keeps_serving(own_models, caplog):
    """A hand-edited aliases file that cannot be followed: said once in the log, not every second."""
    import logging

    from preauth.service.serving import ModelSource

    source = ModelSource(own_models, "production", check_interval=0.01)
    (own_models / "aliases.json").write_text('{"production": "../elsewhere/v77"}')
    with caplog.at_level(logging.ERROR, logger="preauth.service"):
        outcomes = [source.refresh() for _ in range(5)]
    assert outcomes == [False] * 5
    assert source.current.version == "v1"
    assert len([r for r in caplog.records if "reload failed" in r.getMessage()]) == 1
    (own_models / "aliases.json").write_text("not json")
    with caplog.at_level(logging.ERROR, logger="preauth.service"):
        assert [source.refresh() for _ in range(3)] == [False] * 3
    assert len([r for r in caplog.records if "reload failed" in r.getMessage()]) == 2
