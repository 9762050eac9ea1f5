"""Every error code the service gives, and what its answers and logs must never contain."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest
from service_helpers import application

from preauth import applications

KEY = "s3cret-key-1"


def assert_clean(answer: httpx.Response) -> None:
    """No traceback, no internal path, and the common error shape."""
    text = answer.text
    for leak in ("Traceback", 'File "', "/work/", "/tmp/", "site-packages", ".py"):
        assert leak not in text, f"{leak!r} in {text}"
    assert answer.json()["error"]["status"] == answer.status_code


def test_api_keys_on_everything_but_ping(serve):
    server = serve(api_keys=f"other-key,{KEY}")
    with server.client() as client:
        assert client.get("/ping").status_code == 200
        for method, path in (
            ("GET", "/v1/model"),
            ("GET", "/metrics"),
            ("GET", "/v1/decisions"),
            ("GET", "/openapi.json"),
        ):
            refused = client.request(method, path)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"] == "Bearer"
        refused = client.post("/v1/decisions", json=application(), headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 401
        assert_clean(refused)
        assert (
            client.post("/invocations", json=application(), headers={"X-API-Key": "s3cret-key"}).status_code
            == 401
        )
        assert (
            client.post(
                "/v1/decisions", json=application(), headers={"Authorization": f"Bearer {KEY}"}
            ).status_code
            == 201
        )
        assert client.post("/invocations", json=application(), headers={"X-API-Key": KEY}).status_code == 200
        assert client.get("/v1/decisions", headers={"X-API-Key": "other-key"}).status_code == 200


def test_oversized_bodies_get_413(serve):
    server = serve(max_body_bytes=2000)
    big = [application() for _ in range(40)]
    with server.client() as client:
        by_length = client.post("/invocations", json=big)

        def chunks():
            payload = json.dumps(big).encode()
            for i in range(0, len(payload), 500):
                yield payload[i : i + 500]

        streamed = client.post(
            "/v1/decisions/batch", content=chunks(), headers={"Content-Type": "application/json"}
        )
        fine = client.post("/v1/decisions", json=application())
    assert by_length.status_code == 413 and streamed.status_code == 413
    assert_clean(by_length)
    assert fine.status_code == 201


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (application(Age=7), "Age", "7 is outside 18\u2013100"),
        (application(Age="old"), "Age", "'old' is not a whole number"),
        (application(Housing="castle"), "Housing", "'castle' is not one of: own, rent, free"),
        (application(**{"Credit amount": 0}), "Credit amount", "0 is not positive"),
        (application(Duration=None), "Duration", "missing value"),
    ],
)
def test_invalid_bodies_get_422_in_the_schemas_words(serve, body, field, reason):
    server = serve()
    with server.client() as client:
        answer = client.post("/v1/decisions", json=body)
    assert answer.status_code == 422
    assert_clean(answer)
    (error,) = answer.json()["error"]["errors"]
    assert (error["field"], error["reason"]) == (field, reason)
    # the very words the file reader gives for the same application
    (reject,) = applications.applications_from_records([body]).rejects
    assert reject.reason == reason and reject.column == field


def test_one_application_with_several_bad_fields_hears_of_each(serve):
    body = application(Age=150, Housing="castle", **{"Credit amount": -5})
    server = serve()
    with server.client() as client:
        answer = client.post("/v1/decisions", json=body)
        batch = client.post("/v1/decisions/batch", json=[body, application()])
    assert answer.status_code == 422
    assert_clean(answer)
    assert [(e["field"], e["reason"]) for e in answer.json()["error"]["errors"]] == [
        ("Age", "150 is outside 18\u2013100"),
        ("Housing", "'castle' is not one of: own, rent, free"),
        ("Credit amount", "-5 is not positive"),
    ]
    assert answer.json()["error"]["message"].endswith("column 'Age': 150 is outside 18\u2013100")
    # a batch keeps one reject per refused row, as file validation does
    assert [r["field"] for r in batch.json()["rejects"]] == ["Age"]


def test_other_422s(serve):
    server = serve()
    missing = {k: v for k, v in application().items() if k != "Purpose"}
    with server.client() as client:
        for answer in (
            client.post("/v1/decisions", content=b"{not json", headers={"Content-Type": "application/json"}),
            client.post("/v1/decisions", json=[application()]),
            client.post("/v1/decisions", json=missing),
            client.post("/invocations", content=b"1,2,3\n", headers={"Content-Type": "text/csv"}),
            client.post("/invocations", json=[application(Age=1)]),
            client.get("/v1/decisions", params={"limit": 0}),
        ):
            assert answer.status_code == 422, answer.text
            assert_clean(answer)
        answer = client.post("/v1/decisions", json=missing)
    assert answer.json()["error"]["errors"][0]["field"] == "Purpose"
    assert "missing required column 'Purpose'" in answer.json()["error"]["message"]


def test_404_and_415(serve):
    server = serve()
    with server.client() as client:
        unknown = client.get("/v1/decisions/no-such-id")
        nowhere = client.get("/v2/anything")
        xml = client.post("/invocations", content=b"<app/>", headers={"Content-Type": "application/xml"})
        body = json.dumps(application()).encode()
        not_json = [
            client.post(path, content=body, headers={"Content-Type": kind})
            for path in ("/v1/decisions", "/v1/decisions/batch")
            for kind in ("text/plain", "text/csv", "application/x-www-form-urlencoded")
        ]
        as_json = client.post(
            "/v1/decisions", content=body, headers={"Content-Type": "application/json; charset=utf-8"}
        )
    assert as_json.status_code == 201
    for answer in not_json:
        assert answer.status_code == 415 and "send application/json" in answer.json()["error"]["message"]
        assert_clean(answer)
    assert (
        unknown.status_code == 404
        and "no decision with id 'no-such-id'" in unknown.json()["error"]["message"]
    )
    assert nowhere.status_code == 404
    assert xml.status_code == 415 and "text/csv or application/json" in xml.json()["error"]["message"]
    for answer in (unknown, nowhere, xml):
        assert_clean(answer)


def test_model_cards_name_the_labels_file_without_its_directories(serve, own_models, tmp_path):
    meta_file = own_models / "v1" / "bundle.json"
    meta = json.loads(meta_file.read_text())
    meta["label_provenance"] = {"source": str(tmp_path / "work" / "labels.csv"), "provider": "rules"}
    meta_file.write_text(json.dumps(meta))
    server = serve(models_dir=own_models)
    with server.client() as client:
        card = client.get("/v1/model")
        page_card = client.get("/ui/model")
    assert card.json()["label_provenance"] == {"source": "labels.csv", "provider": "rules"}
    assert page_card.json()["label_source"] == "labels.csv"
    for answer in (card, page_card):
        assert str(tmp_path) not in answer.text and "/tmp/" not in answer.text


def test_unexpected_failures_answer_500_without_a_traceback(serve, caplog):
    server = serve()

    def broken(*args, **kwargs):
        raise RuntimeError("/secret/internal/path exploded")

    server.app.state.runtime.source.current.decide_many = broken
    with caplog.at_level(logging.ERROR, logger="preauth.service"), server.client() as client:
        answer = client.post("/v1/decisions", json=application())
    assert answer.status_code == 500
    assert_clean(answer)
    assert "secret" not in answer.text and answer.headers["x-request-id"] in answer.json()["error"]["message"]
    assert any("exploded" in r.getMessage() or r.exc_info for r in caplog.records)


def access_lines(caplog) -> list[dict]:
    """The access-log lines so far; the server writes its line just after the answer has gone out,
    so the client may hold the answer a moment before the line exists."""
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "preauth.access"]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.01)


def test_access_log_is_json_without_application_data_unless_asked(serve, caplog):
    with caplog.at_level(logging.INFO, logger="preauth.access"):
        quiet = serve()
        with quiet.client() as client:
            client.post("/v1/decisions", json=application(Purpose="vacation/others"))
        lines = access_lines(caplog)
        assert lines and lines[-1]["status"] == 201 and lines[-1]["path"] == "/v1/decisions"
        assert "vacation" not in caplog.text
        caplog.clear()
        chatty = serve(log_application_data=True)
        with chatty.client() as client:
            client.post("/v1/decisions", json=application(Purpose="vacation/others"))
        last = access_lines(caplog)[-1]
    assert last["application_data"]["Purpose"] == "vacation/others"
