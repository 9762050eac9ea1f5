"""The lifecycle routes (reviews, outcomes) used the wrong way, through a real server.

Each wrong request is refused with its own 4xx naming what is wrong and stores nothing.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from service_helpers import application

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
