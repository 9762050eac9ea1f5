"""Hostile but well-formed queries on the decision list and ids: a 4xx naming the parameter, never a 500."""

from __future__ import annotations

import base64

import pytest
from service_helpers import application


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request, serve):
    if request.param == "postgresql":
        return serve(database_url=request.getfixturevalue("fresh_postgres_url"))
    return serve()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": _cursor("s99999999999999999999999")}, "cursor"),
        ({"cursor": _cursor("s-5")}, "cursor"),
        ({"since": "0001-01-01T00:00:00+14:00"}, "since"),
        ({"until": "9999-12-31T23:59:59-14:00"}, "until"),
        ({"model_version": "v1\x00"}, "model_version"),
        ({"since": "0.5"}, "since"),  # not read as seconds since 1970
        ({"until": "yesterday"}, "until"),
    ],
)
def test_out_of_range_or_nul_queries_are_422_naming_the_parameter(server, params, field):
    with server.client() as client:
        assert client.post("/v1/decisions", json=application()).status_code == 201
        answer = client.get("/v1/decisions", params=params)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert field in error["message"]
    assert [e["field"] for e in error["errors"]] == [field]


def test_an_id_with_a_nul_byte_is_404(server):
    with server.client() as client:
        answer = client.get("/v1/decisions/%00")
        assert answer.status_code == 404, answer.text
        assert "no decision" in answer.json()["error"]["message"]
        # the extreme ends of the range are still answered, as an empty page
        for params in ({"since": "0001-01-01T00:00:00+00:00"}, {"until": "9999-12-31T23:59:59+00:00"}):
            assert client.get("/v1/decisions", params=params).status_code == 200


@pytest.mark.parametrize(
    "path", ["/v1/decisions", "/v1/decisions/export", "/v1/monitoring", "/v1/models/compare?a=v1&b=v1"]
)
def test_a_window_that_ends_before_it_starts_is_422_naming_until(server, path):
    """Swapped, since and until made an empty window answered 200 with nothing in it, as if no
    decision had been made; every route reading the pair refuses it the same way."""
    with server.client() as client:
        assert client.post("/v1/decisions", json=application()).status_code == 201
        swapped = {"since": "2026-12-06T00:00:00+00:00", "until": "2026-12-01T00:00:00+00:00"}
        answer = client.get(path, params=swapped)
        assert answer.status_code == 422, answer.text
        assert [e["field"] for e in answer.json()["error"]["errors"]] == ["until"]
        assert "is not after since" in answer.json()["error"]["message"]
        ordered = {"since": "2026-12-01T00:00:00+00:00", "until": "2026-12-06T00:00:00+00:00"}
        assert client.get(path, params=ordered).status_code != 422
