"""One bad request never costs another its result: refused alone with a 4xx naming the field, while
the valid requests scored and committed beside it are answered and stored."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from service_helpers import application, run_async

from preauth.coalescing import Coalescer
from preauth.service.intake import Intake, check_records
from preauth.service.serving import Decider, ModelSource

pytestmark = pytest.mark.booster_path

HOSTILE = [10**20, 9e307, 2**63, -(2**64), 1e20]


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request, serve, tmp_path):
    if request.param == "sqlite":
        return serve(database_url=f"sqlite:///{tmp_path / 'mixed.db'}")
    return serve(database_url=request.getfixturevalue("fresh_postgres_url"))


def test_huge_numbers_are_refused_alone_and_their_neighbours_stored(server):
    """10% hostile numbers among concurrent requests: every valid one 201 and stored, every hostile
    one 422 naming 'Credit amount', none 5xx (so no client retries what can never succeed)."""

    def post(n: int) -> tuple[bool, httpx.Response]:
        hostile = n % 10 == 0
        body = application(**{"Credit amount": HOSTILE[n // 10 % len(HOSTILE)]}) if hostile else application()
        with server.client() as client:
            return hostile, client.post("/v1/decisions", json=body)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, range(300)))
    valid = [a for hostile, a in answers if not hostile]
    refused = [a for hostile, a in answers if hostile]
    assert [a.status_code for a in valid] == [201] * len(valid)
    for answer in refused:
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["errors"][0]["field"] == "Credit amount"
        assert "too large" in answer.json()["error"]["message"]
        assert "retry-after" not in answer.headers
    with server.client() as client:
        listed = client.get("/v1/decisions", params={"limit": 500}).json()["decisions"]
    assert {d["id"] for d in listed} == {a.json()["id"] for a in valid}


def test_a_batch_and_invocations_keep_their_good_rows(server):
    rows = [application(), application(**{"Credit amount": 1e20}), application(Age=44)]
    with server.client() as client:
        batch = client.post("/v1/decisions/batch", json=rows)
        invoked = client.post("/invocations", json=rows)
    assert batch.status_code == 200
    assert len(batch.json()["decisions"]) == 2
    assert [(r["row"], r["field"]) for r in batch.json()["rejects"]] == [(2, "Credit amount")]
    assert invoked.status_code == 200
    results = invoked.json()
    assert "probability_fraud" in results[0] and "probability_fraud" in results[2]
    assert results[1]["error"]["field"] == "Credit amount"


def test_a_request_the_booster_cannot_score_fails_alone(models_dir):
    """Scoring is coalesced: requests arriving together share one booster call. A request whose
    row makes the booster fail (an infinite value, which validation would never let through) fails
    on its own; the requests batched with it get their decisions."""
    source = ModelSource(models_dir, "v1")
    decider = Decider(source)
    good = check_records([application(), application(Age=50)]).accepted
    poison = Intake(1, {**good[0].values, "Credit amount": float("inf")}, {})

    async def together() -> list:
        return await asyncio.gather(
            decider.decide(good[:1], request_id="a", channel="api"),
            decider.decide([poison], request_id="b", channel="api"),
            decider.decide(good[1:], request_id="c", channel="api"),
            return_exceptions=True,
        )

    first, failed, third = run_async(together())
    assert isinstance(failed, Exception)
    assert [d["request_id"] for d in first] == ["a"] and [d["request_id"] for d in third] == ["c"]
    assert 0 <= first[0]["probability"] <= 1 and 0 <= third[0]["probability"] <= 1


def test_the_coalescer_bounds_the_work_of_one_turn_and_isolates_failures():
    calls: list[list[int]] = []

    def work(items: list[int]) -> list[int]:
        calls.append(list(items))
        if 13 in items:
            raise ValueError("13 cannot be done")
        return [i * 2 for i in items]

    together = Coalescer(work, inline_weight=10, max_weight=4)

    async def run() -> list:
        return await asyncio.gather(*(together.submit(i) for i in range(10, 20)), return_exceptions=True)

    results = run_async(run())
    assert [r for r in results if isinstance(r, ValueError)] == [results[3]]
    assert [r for i, r in enumerate(results) if i != 3] == [i * 2 for i in range(10, 20) if i != 13]
    assert max(len(c) for c in calls) <= 4  # no turn did more than its bound
    assert calls[0] == [10, 11, 12, 13]  # the failing batch, then each of its items alone
    assert calls[1:5] == [[10], [11], [12], [13]]
