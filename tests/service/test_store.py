"""The decision store on SQLite and PostgreSQL: 8 threads x 250 requests, exactly 2,000 decisions."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
from service_helpers import application, run_async

from preauth.errors import InputError
from preauth.service.runtime import store_writer
from preauth.store import Claim, DecisionStore, Keep, decisions

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


def test_postgresql_keeps_every_decision_once(serve, fresh_postgres_url):
    postgres_url = fresh_postgres_url
    server = serve(database_url=postgres_url)
    ids = hammer(server.url)
    assert_exactly_stored(postgres_url, ids)
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/v1/decisions", params={"limit": 5}).json()
        assert len(page["decisions"]) == 5 and page["next_cursor"]
        fetched = client.get(f"/v1/decisions/{ids[0]}").json()
    assert fetched["id"] == ids[0] and fetched["timestamp"].endswith("+00:00")


def decision(**changes) -> dict:
    made = {
        "id": str(uuid.uuid4()),
        "request_id": "r",
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
    made.update(changes)
    return made


def fresh_store(backend: str, tmp_path, request) -> DecisionStore:
    url = (
        f"sqlite:///{tmp_path / 'gc.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    )
    store = DecisionStore(url)
    store.migrate()
    store.migrate()  # a second run is a no-op
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM idempotency_keys")
        connection.execute(decisions.delete())
    return store


def claim(key: str, fingerprint: str = "f1", route: str = "decision") -> Claim:
    return Claim(key, route, fingerprint)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_group_commit_and_idempotency_in_one_batch(backend, tmp_path, request):
    store = fresh_store(backend, tmp_path, request)
    first, twin, plain = decision(), decision(), decision()
    other_body = decision()

    async def together() -> list:
        writer = store_writer(store)
        return await asyncio.gather(
            writer.submit(Keep([first], claim("k-1"))),
            writer.submit(Keep([twin], claim("k-1"))),
            writer.submit(Keep([plain])),
            writer.submit(Keep([other_body], claim("k-1", fingerprint="f2"))),
            return_exceptions=True,
        )

    results = run_async(together())
    assert results[0] == [first]
    assert results[1][0]["id"] == first["id"] and results[1][0]["replayed"] is True
    assert results[2] == [plain]
    assert isinstance(results[3], InputError) and results[3].column == "Idempotency-Key"
    assert store.count() == 2
    assert store.replay(claim("k-1"))[0]["id"] == first["id"]
    assert store.replay(claim("k-2")) is None
    assert isinstance(store.replay(claim("k-1", route="batch")), InputError)
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_request_the_database_refuses_fails_alone(backend, tmp_path, request):
    """One request's unstorable decision (an int past 64 bits cannot be written as JSON) is refused
    by the database layer; the requests committed with it are stored and acknowledged all the same."""
    store = fresh_store(backend, tmp_path, request)
    good = [decision() for _ in range(6)]
    poison = decision(input={"Credit amount": 10**30})

    async def together() -> list:
        writer = store_writer(store)
        keeps = [Keep([d]) for d in good[:3]] + [Keep([poison])] + [Keep([d]) for d in good[3:]]
        return await asyncio.gather(*(writer.submit(k) for k in keeps), return_exceptions=True)

    results = run_async(together())
    assert [r for r in results if isinstance(r, BaseException)] == [results[3]]
    assert [r[0]["id"] for r in results if not isinstance(r, BaseException)] == [d["id"] for d in good]
    assert store.count() == 6 and store.get(poison["id"]) is None
    assert all(store.get(d["id"]) is not None for d in good)
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


@pytest.mark.timeout(60)  # before: waited for ever
def test_a_database_that_never_answers_is_one_line_quickly(monkeypatch):
    """A database URL at a port that accepts and says nothing (a firewall's proxy, another
    service) held `preauth serve`, every store command and each request for ever: psycopg waits
    for the server's first answer without a limit unless given one."""
    import socket
    import time

    from preauth import store as module
    from preauth.errors import ConfigurationError

    monkeypatch.setattr(module, "CONNECT_TIMEOUT", 1)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/test"
        started = time.monotonic()
        with pytest.raises(ConfigurationError) as refused:
            DecisionStore(url).migrate()
    assert time.monotonic() - started < 5
    assert str(refused.value).startswith("decision store postgresql+psycopg://postgres@127.0.0.1:")
    assert "timeout" in str(refused.value) and "\n" not in str(refused.value)


def test_keys_stored_before_the_key_table_still_replay(tmp_path):
    """A database written by the previous version (keys in the decisions table, a batch's rows as
    KEY#batch#i) is migrated: its keys replay what they stood for, on the route they came from."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    import preauth.store as store_module

    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = DecisionStore(url)
    config = Config()
    config.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    with store.engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.commit()
    old = {"single": decision(), "b0": decision(), "b1": decision()}
    with store.engine.begin() as connection:
        for key, made in zip(["order-1", "order-2#batch#0", "order-2#batch#1"], old.values(), strict=True):
            connection.execute(decisions.insert(), {**made, "idempotency_key": key})
    store.migrate()
    single = store.replay(Claim("order-1", "decision", "any"))
    batch = store.replay(Claim("order-2", "batch", "any"))
    assert [d["id"] for d in single] == [old["single"]["id"]]
    assert [d["id"] for d in batch] == [old["b0"]["id"], old["b1"]["id"]]
    assert isinstance(store.replay(Claim("order-2", "decision", "any")), InputError)
    store.close()
