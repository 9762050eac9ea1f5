"""The decision store on SQLite and PostgreSQL: 8 threads x 250 requests, exactly 2,000 decisions."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
from service_helpers import application

from preauth.store import DecisionStore, GroupCommit, decisions

THREADS, PER_THREAD = 8, 250


def hammer(url: str) -> list[str]:
    """8 threads x 250 decisions over HTTP; every answer must be 201; returns the decision ids."""
    ids: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for i in range(PER_THREAD):
                answer = client.post("/v1/decisions", json=application(Age=18 + (n * PER_THREAD + i) % 80))
                with lock:
                    if answer.status_code == 201:
                        ids.append(answer.json()["id"])
                    else:
                        failures.append(answer.text)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    return ids


def assert_exactly_stored(database_url: str, ids: list[str]) -> None:
    assert len(ids) == len(set(ids)) == THREADS * PER_THREAD
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        stored = connection.execute(sa.select(decisions.c.id)).scalars().all()
    engine.dispose()
    assert len(stored) == THREADS * PER_THREAD
    assert set(stored) == set(ids)


def test_sqlite_keeps_every_decision_once(serve, tmp_path):
    url = f"sqlite:///{tmp_path / 'load.db'}"
    server = serve(database_url=url)
    assert_exactly_stored(url, hammer(server.url))


def test_postgresql_keeps_every_decision_once(serve, postgres_url):
    server = serve(database_url=postgres_url)
    ids = hammer(server.url)
    assert_exactly_stored(postgres_url, ids)
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/v1/decisions", params={"limit": 5}).json()
        assert len(page["decisions"]) == 5 and page["next_cursor"]
        fetched = client.get(f"/v1/decisions/{ids[0]}").json()
    assert fetched["id"] == ids[0] and fetched["timestamp"].endswith("+00:00")


def decision(key: str | None = None) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "request_id": "r",
        "idempotency_key": key,
        "created_at": datetime.now(UTC),
        "channel": "api",
        "model_version": "v1",
        "input": application(),
        "probability": 0.25,
        "target": "good risk",
        "is_fraud": False,
        "confidence": 0.75,
        "threshold": 0.5,
        "reasons": [],
        "contributions": {"Age": 0.1, "bias": -1.2},
    }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_group_commit_and_idempotency_in_one_batch(backend, tmp_path, request):
    url = (
        f"sqlite:///{tmp_path / 'gc.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    )
    store = DecisionStore(url)
    store.migrate()
    store.migrate()  # a second run is a no-op
    with store.engine.begin() as connection:
        connection.execute(decisions.delete())
    writer = GroupCommit(store)
    first, twin, plain = decision("k-1"), decision("k-1"), decision()
    futures = [writer.submit([first]), writer.submit([twin]), writer.submit([plain])]
    results = [f.result(timeout=30)[0] for f in futures]
    writer.close()
    assert results[0]["id"] == results[1]["id"] == first["id"]
    assert results[1].get("replayed") is True
    assert store.count() == 2
    assert store.by_idempotency_key("k-1")["id"] == first["id"]
    store.close()


def test_an_unreachable_or_unknown_database_is_one_clear_line(models_dir, tmp_path):
    import os
    import subprocess
    import sys

    from service_helpers import free_port

    from preauth.errors import ConfigurationError

    nobody = f"postgresql+psycopg://postgres:s3cret@127.0.0.1:{free_port()}/test"
    with pytest.raises(ConfigurationError) as refused:
        DecisionStore(nobody).migrate()
    assert "Connection refused" in str(refused.value) and "s3cret" not in str(refused.value)
    with pytest.raises(ConfigurationError, match="database_url 'nonsense://x': Can't load plugin"):
        DecisionStore("nonsense://x")
    env = {
        **os.environ,
        "PREAUTH_DATABASE_URL": nobody,
        "PREAUTH_SAGEMAKER_MODEL_DIR": str(tmp_path / "none"),
    }
    served = subprocess.run(
        [
            sys.executable,
            "-c",
            "from preauth.cli import main; main()",
            "--models-dir",
            str(models_dir),
            "serve",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode == 2
    (line,) = served.stderr.strip().splitlines()
    assert line.startswith("preauth: error: decision store postgresql+psycopg://postgres:***@127.0.0.1:")
