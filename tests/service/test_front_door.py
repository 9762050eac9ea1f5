"""What every answer carries (no sniffing, no framing, no caching of decisions), which routes need a
key, what a 405 allows, and how much of a hostile value an error answer echoes."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from service_helpers import application

KEY = "front-door-key"


def assert_protected(answer: httpx.Response) -> None:
    assert answer.headers["x-content-type-options"] == "nosniff", answer.request.url
    assert answer.headers["x-frame-options"] == "DENY", answer.request.url
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], answer.request.url


def test_every_answer_is_unsniffable_and_unframeable_and_decisions_are_never_cached(serve):
    server = serve()
    with server.client() as client:
        made = client.post("/v1/decisions", json=application())
        decision_answers = [
            made,
            client.post("/v1/decisions/batch", json=[application()]),
            client.get("/v1/decisions"),
            client.get(f"/v1/decisions/{made.json()['id']}"),
            client.get("/v1/decisions/no-such-id"),
            client.post("/v1/decisions", json=application(Age=150)),
            client.post("/invocations", json=application()),
            client.post("/invocations", content="35,male", headers={"content-type": "text/csv"}),
            client.get("/ui/model"),
        ]
        for answer in decision_answers:
            assert_protected(answer)
            assert answer.headers["cache-control"] == "no-store", (answer.request.url, answer.status_code)
        others = [
            client.get("/ping"),
            client.get("/"),
            client.get("/ui/static/page.css"),
            client.get("/v1/model"),
            client.get("/docs"),
            client.get("/openapi.json"),
            client.get("/nowhere"),
            client.post("/v1/decisions", content=b"x" * 6_000_000),
        ]
        for answer in others:
            assert_protected(answer)
        assert [a.status_code for a in decision_answers[:2]] == [201, 200]
        assert others[1].status_code == others[2].status_code == 200
        assert others[2].headers["cache-control"] != "no-store"  # assets hold no data
        assert others[-1].status_code == 413


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_with_keys_only_the_page_shell_its_assets_and_ping_answer_without_one(serve):
    server = serve(api_keys=KEY)
    open_paths = {"/", "/ui/static/{name}", "/ping"}
    checked = []
    with server.client() as client:
        for route in iter_route_contexts(server.app.routes):
            methods = route.methods
            if not methods:
                continue
            for method in sorted(methods - {"HEAD"}):
                answer = client.request(method, _concrete(route.path))
                assert_protected(answer)
                if route.path in open_paths:
                    assert answer.status_code != 401, route.path
                else:
                    assert answer.status_code == 401, (method, route.path, answer.status_code)
                    checked.append(route.path)
        # the data routes of the page are among those checked
        assert {"/ui/model", "/ui/report", "/ui/batch", "/v1/decisions", "/openapi.json"} <= set(checked)
        # the shell asks for a key and shows nothing without one; with one, the data answers
        assert client.get("/ui/model", headers={"X-API-Key": KEY}).status_code == 200
        assert client.get("/ui/static/page.js").status_code == 200


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v1/decisions", {"GET", "POST"}),
        ("/v1/decisions/abc", {"GET"}),
        ("/ping", {"GET"}),
        ("/v1/decisions/batch", {"POST"}),
    ],
)
def test_a_method_not_allowed_says_which_are(serve, path, allowed):
    server = serve()
    with server.client() as client:
        for method in ("OPTIONS", "PUT", "DELETE"):
            answer = client.request(method, path)
            assert answer.status_code == 405
            assert {m.strip() for m in answer.headers["allow"].split(",")} == allowed
            assert answer.json()["error"]["status"] == 405
        for method in allowed - {"POST"}:  # and each of them is indeed answered
            assert client.request(method, path).status_code != 405


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/decisions", application(Housing="h" * 1_000_000)),
        ("/v1/decisions/batch", [application(), application(Housing="h" * 1_000_000)]),
        ("/invocations", [application(Purpose="p" * 1_000_000)]),
        ("/v1/decisions", application(Age="9" * 1_000_000)),
        ("/v1/decisions/batch", [application(), {**application(), "_" * 1_000_000 + "sex": "male"}]),
    ],
    ids=["single", "batch", "invocations", "number", "key"],
)
def test_a_huge_value_is_echoed_at_most_a_hundred_characters_long(serve, path, body):
    server = serve()
    with server.client() as client:
        answer = client.post(path, json=body)
    assert answer.status_code in (200, 422), answer.status_code
    assert len(answer.content) < 5000, len(answer.content)  # a decision, and texts cut short
    text = answer.text
    assert re.search(r"([hp9_])\1{99}\u2026", text), text[:500]
    assert not re.search(r"([hp9])\1{100}", text)
