"""Idempotency keys over real HTTP on both stores: no 2xx without a stored decision, no replay of a
different request, no collision between the single and the batch route."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from service_helpers import application


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request, serve, tmp_path):
    if request.param == "sqlite":
        return serve(database_url=f"sqlite:///{tmp_path / 'keys.db'}")
    return serve(database_url=request.getfixturevalue("fresh_postgres_url"))


def stored_count(client: httpx.Client) -> int:
    return len(client.get("/v1/decisions", params={"limit": 500}).json()["decisions"])


def assert_refused_key(answer: httpx.Response) -> None:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert "Idempotency-Key" in error["message"]
    assert error["errors"][0]["field"] == "Idempotency-Key"


@pytest.mark.parametrize("key", ["", "caf\u00e9", "a" * 256])
def test_an_unusable_key_is_refused_and_nothing_is_stored(server, key):
    with server.client() as client:
        answers = [
            client.post(
                "/v1/decisions", json=application(), headers={"Idempotency-Key": key.encode("latin-1")}
            )
            for _ in range(3)
        ]
        batch = client.post(
            "/v1/decisions/batch", json=[application()], headers={"Idempotency-Key": key.encode("latin-1")}
        )
        for answer in [*answers, batch]:
            assert answer.status_code == 422, answer.text
            assert answer.json()["error"]["errors"][0]["field"] == "Idempotency-Key"
        assert stored_count(client) == 0


def test_every_acknowledged_decision_is_stored(server):
    """2xx answers under many keys, some repeated, some racing: each id answered can be fetched."""

    def post(n: int) -> httpx.Response:
        with server.client() as client:
            return client.post(
                "/v1/decisions", json=application(Age=20 + n % 5), headers={"Idempotency-Key": f"k-{n % 5}"}
            )

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(60)))
    assert {a.status_code for a in answers} <= {200, 201}
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 5
    with server.client() as client:
        for decision_id in ids:
            assert client.get(f"/v1/decisions/{decision_id}").status_code == 200
        assert stored_count(client) == 5


def test_a_key_reused_with_a_different_body_is_refused(server):
    with server.client() as client:
        first = client.post("/v1/decisions", json=application(), headers={"Idempotency-Key": "order-7"})
        other = client.post("/v1/decisions", json=application(Age=61), headers={"Idempotency-Key": "order-7"})
        same = client.post("/v1/decisions", json=application(), headers={"Idempotency-Key": "order-7"})
        assert first.status_code == 201 and same.status_code == 200
        assert_refused_key(other)
        assert "different request" in other.json()["error"]["message"]
        assert same.json()["id"] == first.json()["id"]
        assert stored_count(client) == 1


def test_batch_and_single_keys_never_collide(server):
    batch = [application(Age=30), application(Age=40)]
    with server.client() as client:
        made = client.post("/v1/decisions/batch", json=batch, headers={"Idempotency-Key": "K"})
        assert made.status_code == 200 and len(made.json()["decisions"]) == 2
        assert "idempotent-replayed" not in made.headers
        # the old storage named the batch "K#batch": a single request under that key is its own
        single = client.post("/v1/decisions", json=application(), headers={"Idempotency-Key": "K#batch"})
        assert single.status_code == 201
        assert single.json()["id"] not in {d["id"] for d in made.json()["decisions"]}
        # the batch's own key on the single route is a different request
        assert_refused_key(client.post("/v1/decisions", json=batch[0], headers={"Idempotency-Key": "K"}))
        assert stored_count(client) == 3


def test_a_batch_replays_whole_and_a_different_batch_under_its_key_is_refused(server):
    two = [application(Age=30), application(Age=40), application(Age=7)]
    three = [application(Age=30), application(Age=40), application(Age=50)]
    with server.client() as client:
        first = client.post("/v1/decisions/batch", json=two, headers={"Idempotency-Key": "B"})
        again = client.post("/v1/decisions/batch", json=two, headers={"Idempotency-Key": "B"})
        bigger = client.post("/v1/decisions/batch", json=three, headers={"Idempotency-Key": "B"})
        assert first.status_code == again.status_code == 200
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        assert len(first.json()["decisions"]) == 2 and first.json()["rejects"][0]["row"] == 3
        assert_refused_key(bigger)
        assert stored_count(client) == 2


def test_racing_batches_with_one_key_store_one_batch(server):
    batch = [application(Age=30 + i) for i in range(4)]

    def post(_: int) -> list[str]:
        with server.client() as client:
            answer = client.post("/v1/decisions/batch", json=batch, headers={"Idempotency-Key": "race-b"})
            assert answer.status_code == 200, answer.text
            return [d["id"] for d in answer.json()["decisions"]]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(16)))
    assert len({tuple(a) for a in answers}) == 1
    with server.client() as client:
        assert stored_count(client) == 4
