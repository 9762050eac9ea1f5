"""Request bodies that are valid JSON but hold what orjson refuses, through a real server on each store.

One such value in one element of a batch must cost only that element its decision: it is refused
in its row, naming the field, as the same value in a file is (:func:`preauth.applications.reading.json_value`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_helpers import application, running

from preauth.settings import Settings

GOOD = json.dumps(application())
HUGE = GOOD.replace('"Credit amount": 2500', '"Credit amount": 1e400')  # past a double
LONE = GOOD.replace('"Housing": "own"', '"Housing": "\\ud800"')  # a lone surrogate, escaped
TOKEN = GOOD.replace('"Age": 35', '"Age": NaN')  # JavaScript's token, which Python's JSON reads


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One real server per store for the module (PostgreSQL: the session's schema)."""
    from preauth.service.app import create_app

    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('bodies') / 'decisions.db'}"
    settings = Settings(models_dir=models_dir, database_url=url, sagemaker_model_dir=None)
    with running(create_app(settings, reload_interval=60)) as base:
        yield base


def _post(base: str, path: str, body: str, **headers: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=30) as client:
        return client.post(
            path, content=body.encode(), headers={"Content-Type": "application/json", **headers}
        )


def test_a_value_orjson_refuses_is_refused_in_its_row_and_its_neighbours_are_decided(server: str) -> None:
    """``1e400`` or ``"\\ud800"`` in one element made the whole batch 422 'invalid JSON'."""
    answer = _post(
        server,
        "/v1/decisions/batch",
        f"[{GOOD},{HUGE},{LONE},{TOKEN},{GOOD}]",
        **{"Idempotency-Key": "hostile-bodies-1"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(r["row"], r["field"], r["reason"]) for r in body["rejects"]] == [
        (2, "Credit amount", "'inf' is not a number"),
        (3, "Housing", "'\ufffd' is not one of: own, rent, free"),
        (4, "Age", "missing value"),
    ]
    decided = [d["id"] for d in body["decisions"]]
    assert len(decided) == 2
    with httpx.Client(base_url=server, timeout=30) as client:
        assert all(client.get(f"/v1/decisions/{i}").status_code == 200 for i in decided)
    again = _post(
        server,
        "/v1/decisions/batch",
        f"[{GOOD},{HUGE},{LONE},{TOKEN},{GOOD}]",
        **{"Idempotency-Key": "hostile-bodies-1"},
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [d["id"] for d in again.json()["decisions"]] == decided


@pytest.mark.parametrize(("body", "field"), [(HUGE, "Credit amount"), (LONE, "Housing")])
def test_one_application_with_such_a_value_is_422_naming_the_field(
    server: str, body: str, field: str
) -> None:
    answer = _post(server, "/v1/decisions", body)
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["error"]["errors"]] == [field]
    results = _post(server, "/invocations", f"[{GOOD},{body}]").json()
    assert "error" not in results[0] and results[1]["error"]["field"] == field


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("where", ["Age", "Note"])  # a field's value, or a key no field has
@pytest.mark.parametrize("depth", [300, 1000])
def test_a_body_nested_deeper_than_can_be_written_back_is_one_refusal_of_it(
    server: str, where: str, depth: int
) -> None:
    """Past orjson's reading limit (1024 levels) a body was refused; between its writing limit
    (254) and that, it was read, then a 500: writing the Idempotency-Key's fingerprint or echoing
    the row failed, and repr() of a field's value ran out of recursion."""
    body = (
        GOOD[:-1] + f', "{where}": {_nested(depth)}}}'
        if where == "Note"
        else GOOD.replace("35", _nested(depth))
    )
    for path, batch in (
        ("/v1/decisions", body),
        ("/v1/decisions/batch", f"[{GOOD},{body}]"),
        ("/invocations", f"[{GOOD},{body}]"),
    ):
        answer = _post(
            server,
            path,
            batch,
            **{"Idempotency-Key": f"deep-{where}-{depth}"} if path != "/invocations" else {},
        )
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["error"]["message"] == (
            "<request>: JSON nested too deeply; an application is one object of plain values"
        )


def test_an_integer_past_64_bits_beside_a_value_orjson_refuses_is_refused_in_its_row(server: str) -> None:
    """Read by the files' reader (for the 1e400 beside it), 10**30 was a Python int that orjson
    could not write back: a 500 for the Idempotency-Key's fingerprint and for the echoed row."""
    body = HUGE.replace('"Age": 35', '"Age": 1000000000000000000000000000000')
    answer = _post(
        server, "/v1/decisions/batch", f"[{GOOD},{body}]", **{"Idempotency-Key": "hostile-bodies-int"}
    )
    assert answer.status_code == 200, answer.text
    assert [(r["row"], r["field"]) for r in answer.json()["rejects"]] == [(2, "Age")]
    echoed = _post(server, "/invocations", f"[{GOOD},{body}]").json()[1]
    assert echoed["input_data"]["Age"] == "1000000000000000000000000000000"


def test_what_no_parser_takes_is_still_one_refusal_of_the_body(server: str) -> None:
    answer = _post(server, "/v1/decisions/batch", '{"Age": 35,')
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["message"] == "<request>: invalid JSON (unexpected end of data)"
