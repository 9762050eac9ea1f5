"""The /v1 JSON API over real HTTP: decide, batch, list with filters and cursors, fetch, model card."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import pytest
from service_helpers import application

from preauth import applications

pytestmark = pytest.mark.booster_path


def test_decide_one_application_and_fetch_it_back(serve):
    server = serve()
    with server.client() as client:
        made = client.post("/v1/decisions", json=application())
        assert made.status_code == 201, made.text
        decision = made.json()
        fetched = client.get(f"/v1/decisions/{decision['id']}")
    # GET adds what a person and the world said later: nothing yet.
    assert fetched.status_code == 200 and fetched.json() == {**decision, "review": None, "outcome": None}
    assert made.headers["location"] == f"/v1/decisions/{decision['id']}"
    assert decision["model_version"] == "v1" and decision["threshold"] == 0.5
    assert decision["input"] == application()
    assert decision["decision"] == ("decline" if decision["is_fraud"] else "approve")
    assert decision["request_id"] == made.headers["x-request-id"]
    assert 1 <= len(decision["reasons"]) <= 4


def test_snake_case_body(serve):
    server = serve()
    body = {f.key: f.example for f in applications.FIELDS}
    with server.client() as client:
        answer = client.post("/v1/decisions", json=body)
    assert answer.status_code == 201
    assert answer.json()["input"]["credit_amount"] == 2500


def test_batch_decides_good_rows_and_returns_rejects(serve):
    server = serve()
    with server.client() as client:
        answer = client.post(
            "/v1/decisions/batch", json=[application(), application(Duration=0), application(Age=50)]
        )
    assert answer.status_code == 200
    body = answer.json()
    assert len(body["decisions"]) == 2
    assert body["rejects"] == [
        {
            "row": 2,
            "field": "Duration",
            "value": "0",
            "reason": "0 is not positive",
            "message": "<request>, row 2, column 'Duration': 0 is not positive",
        }
    ]


def test_idempotency_key_returns_the_stored_decision_never_a_second(serve):
    server = serve()
    with server.client() as client:
        first = client.post("/v1/decisions", json=application(), headers={"Idempotency-Key": "order-42"})
        reordered = dict(reversed(list(application().items())))  # the same body, keys in another order
        again = client.post("/v1/decisions", json=reordered, headers={"Idempotency-Key": "order-42"})
        listed = client.get("/v1/decisions").json()["decisions"]
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(listed) == 1


def test_racing_requests_with_one_key_store_one_decision(serve):
    server = serve()

    def post(_: int) -> dict:
        with server.client() as client:
            answer = client.post("/v1/decisions", json=application(), headers={"Idempotency-Key": "race"})
            assert answer.status_code in (200, 201)
            return answer.json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(32)))
    assert len({a["id"] for a in answers}) == 1
    with server.client() as client:
        assert len(client.get("/v1/decisions").json()["decisions"]) == 1


def test_listing_filters_and_cursor_paging(serve):
    server = serve()
    with server.client() as client:
        made = [client.post("/v1/decisions", json=application(Age=20 + i)).json() for i in range(7)]
        seen, cursor = [], None
        while True:
            page = client.get(
                "/v1/decisions", params={"limit": 3, **({"cursor": cursor} if cursor else {})}
            ).json()
            seen += [d["id"] for d in page["decisions"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [d["id"] for d in reversed(made)]
        for target in ("good risk", "bad risk"):
            found = client.get("/v1/decisions", params={"target": target}).json()["decisions"]
            assert {d["id"] for d in found} == {d["id"] for d in made if d["target"] == target}
        later = client.get("/v1/decisions", params={"since": made[3]["timestamp"]}).json()["decisions"]
        earlier = client.get("/v1/decisions", params={"until": made[3]["timestamp"]}).json()["decisions"]
        assert {d["id"] for d in later} | {d["id"] for d in earlier} == {d["id"] for d in made}
        assert made[3]["id"] in {d["id"] for d in later}
        assert client.get("/v1/decisions", params={"model_version": "v9"}).json()["decisions"] == []
        assert client.get("/v1/decisions", params={"target": "maybe"}).status_code == 422
        assert client.get("/v1/decisions", params={"cursor": "nonsense!"}).status_code == 422


def test_model_card(serve):
    server = serve()
    with server.client() as client:
        card = client.get("/v1/model").json()
    assert card["version"] == "v1" and card["threshold"] == 0.5
    assert card["features"] == applications.feature_columns()
    assert card["metrics"]["measured_against"].startswith("real Risk")
    assert "path" not in card and "/tmp" not in str(card)


def test_metrics_count_requests_decisions_and_model_version(serve):
    server = serve()
    with server.client() as client:
        for _ in range(3):
            client.post("/v1/decisions", json=application())
        text = client.get("/metrics").text
    assert 'preauth_requests_total{method="POST",route="/v1/decisions",status="201"} 3.0' in text
    assert 'preauth_request_duration_seconds_bucket{le="0.005",route="/v1/decisions"}' in text
    assert "preauth_decisions_total{" in text
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("preauth_decisions_total{")
    )
    assert counted == 3
    assert 'preauth_model_info{version="v1"} 1.0' in text


def test_openapi_is_published_with_examples_from_the_schema(serve):
    server = serve()
    with server.client() as client:
        spec = client.get("/openapi.json").json()
    for path in (
        "/ping",
        "/invocations",
        "/v1/decisions",
        "/v1/decisions/batch",
        "/v1/decisions/{decision_id}",
        "/v1/model",
    ):
        assert path in spec["paths"], path
    body = spec["paths"]["/v1/decisions"]["post"]["requestBody"]["content"]["application/json"]
    assert body["examples"]["typical"]["value"] == applications.example_application()
    props = body["schema"]["properties"]
    assert props["Purpose"]["enum"] == list(applications.field_by_name("Purpose").categories)
    assert props["Age"]["minimum"] == 18 and props["Age"]["maximum"] == 100
    assert not math.isnan(props["Credit amount"]["exclusiveMinimum"])


def test_a_big_batch_beside_single_requests(serve):
    """A batch large enough to be scored and written off the event loop, with small requests beside it."""
    server = serve()
    big = [application(Age=18 + i % 80, Duration=1 + i % 60) for i in range(1500)]
    with ThreadPoolExecutor(5) as pool:
        batch = pool.submit(lambda: server.client().post("/v1/decisions/batch", json=big))
        singles = list(
            pool.map(lambda _: server.client().post("/v1/decisions", json=application()), range(40))
        )
        answer = batch.result()
    assert answer.status_code == 200 and len(answer.json()["decisions"]) == 1500
    assert all(s.status_code == 201 for s in singles)
    with server.client() as client:
        listed, cursor = 0, None
        while True:
            page = client.get(
                "/v1/decisions", params={"limit": 500, **({"cursor": cursor} if cursor else {})}
            ).json()
            listed += len(page["decisions"])
            if not (cursor := page["next_cursor"]):
                break
    assert listed == 1540


def test_the_api_docs_work_without_a_network(serve):
    """Swagger UI and ReDoc load their scripts from the app itself, never from a CDN."""
    import re

    server = serve()
    with server.client() as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            assets = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert assets, page
            for asset in assets:
                assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
                assert client.get(asset).status_code == 200, asset
            assert "cdn" not in html.lower() and "fonts.googleapis" not in html
