"""The lifecycle routes (reviews, outcomes) and the model's report used the wrong way, through a real server.

Each wrong request is refused with its own 4xx naming what is wrong and stores nothing.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from service_helpers import application, today

FAR = {"Age": 18, "Credit amount": 1_000_000}  # far outside training: referred


def _rows(server, table: str) -> int:
    engine = sa.create_engine(server.settings.database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def test_reviews_and_outcomes_refuse_a_body_that_is_not_json_like_decisions(serve, referring_models):
    """A form post or a text file once recorded a review or an outcome (201) where decisions say 415."""
    server = serve(models_dir=referring_models)
    with server.client() as client:
        decided = client.post("/v1/decisions", json=application(**FAR)).json()
        assert decided["decision"] == "refer"
        bodies = {
            f"/v1/decisions/{decided['id']}/review": {"decision": "approve", "reason": "Income verified."},
            f"/v1/decisions/{decided['id']}/outcome": {"outcome": "repaid", "known_at": "2026-01-01"},
        }
        for path, body in bodies.items():
            for kind in ("text/plain", "application/x-www-form-urlencoded", "text/csv"):
                answer = client.post(path, content=json.dumps(body).encode(), headers={"Content-Type": kind})
                assert answer.status_code == 415, (path, kind, answer.text)
                assert "send application/json" in answer.json()["error"]["message"]
    assert _rows(server, "reviews") == 0
    assert _rows(server, "outcomes") == 0


def test_a_review_reason_must_be_visible_text_without_control_characters(serve, referring_models):
    """Zero-width spaces or a terminal's escape sequence were once stored as a person's reason (201)."""
    server = serve(models_dir=referring_models)
    refused = ["\u200b\u200b", "\u2060\u00a0\u200b", "\x07\x08", "ok\x1b[2Jcleared", "fine\x00"]
    with server.client() as client:
        for reason in refused:
            decided = client.post("/v1/decisions", json=application(**FAR)).json()
            answer = client.post(
                f"/v1/decisions/{decided['id']}/review", json={"decision": "approve", "reason": reason}
            )
            assert answer.status_code == 422, (reason, answer.text)
            assert [e["field"] for e in answer.json()["error"]["errors"]] == ["reason"]
        assert _rows(server, "reviews") == 0
        decided = client.post("/v1/decisions", json=application(**FAR)).json()
        kept = "Einkommen geprüft.\nAmount matches the purpose.\t✓"
        answer = client.post(
            f"/v1/decisions/{decided['id']}/review", json={"decision": "decline", "reason": kept}
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["reason"] == kept


def test_a_model_without_a_report_is_404_on_the_page_route_too_and_names_no_path(serve, models_dir):
    """``/ui/report`` once answered 503 with the bundle's directory on the server in its message."""
    server = serve()
    with server.client() as client:
        page = client.get("/ui/report")
        api = client.get("/v1/model/report")
    assert api.status_code == 404
    assert page.status_code == 404, page.text
    assert page.json()["error"]["message"] == (
        "model v1 has no report: no holdout.parquet, so no report; retrain to get one"
    )
    assert str(models_dir) not in page.text


def test_a_damaged_holdout_is_a_404_for_the_page_report_not_a_500(serve, own_models):
    (own_models / "v1" / "holdout.parquet").write_bytes(b"junk\n")
    server = serve(models_dir=own_models)
    with server.client() as client:
        page = client.get("/ui/report")
    assert page.status_code == 404, page.text
    assert page.json()["error"]["message"].startswith("model v1 has no report: unreadable holdout.parquet (")
    assert str(own_models) not in page.text


def test_a_known_at_no_utc_date_can_hold_is_422_naming_known_at_not_a_500(serve):
    """Year 1 at +14:00 is before year 1 in UTC (and 9999-12-31 at -14:00 after 9999): the
    conversion overflowed into a 500; the queries' since/until were already refused this way."""
    server = serve()
    with server.client() as client:
        decided = client.post("/v1/decisions", json=application()).json()
        for known_at in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
            answer = client.post(
                f"/v1/decisions/{decided['id']}/outcome", json={"outcome": "repaid", "known_at": known_at}
            )
            assert answer.status_code == 422, answer.text
            (error,) = answer.json()["error"]["errors"]
            assert error["field"] == "known_at"
            assert error["message"] == (
                f"<request>, column 'known_at': {known_at} is outside the years 1-9999 in UTC"
            )
    assert _rows(server, "outcomes") == 0


def test_an_outcomes_file_with_a_nul_in_an_id_rejects_that_row_on_postgresql(
    serve, fresh_postgres_url, tmp_path
):
    """PostgreSQL text cannot hold a NUL: looking such an id up ended ``outcomes import`` in a
    DataError traceback, and the file's good rows were never recorded."""
    from preauth.outcomes import import_file
    from preauth.store import DecisionStore

    server = serve(database_url=fresh_postgres_url)
    with server.client() as client:
        decided = client.post("/v1/decisions", json=application()).json()["id"]
        book = tmp_path / "book.csv"
        book.write_text(
            f"decision_id,outcome,known_at\nab\x00c,repaid,{today()}\n{decided},defaulted,{today()}\n",
            encoding="utf-8",
        )
        imported = import_file(DecisionStore(fresh_postgres_url), book)
        assert imported.created == 1
        assert imported.reject_messages() == [
            f"{book}, row 1, column 'decision_id': no stored decision has this id"
        ]
        assert client.get(f"/v1/decisions/{decided}/outcome").json()["outcome"] == "defaulted"
