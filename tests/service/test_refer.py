"""Refer instead of guessing: an application outside what the model was trained on goes to a person."""

from __future__ import annotations

import pytest
from service_helpers import application

pytestmark = pytest.mark.booster_path


def _decide_and_fetch(server, body):
    with server.client() as client:
        made = client.post("/v1/decisions", json=body)
        assert made.status_code == 201, made.text
        decision = made.json()
        fetched = client.get(f"/v1/decisions/{decision['id']}")
    assert fetched.status_code == 200
    kept = fetched.json()
    assert kept.pop("review") is None and kept.pop("outcome") is None
    return decision, kept


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_far_outside_training_is_referred_and_stored_so(serve, referring_models, database, request):
    overrides = {"models_dir": referring_models}
    if database == "postgresql":
        overrides["database_url"] = request.getfixturevalue("fresh_postgres_url")
    server = serve(**overrides)

    asked, kept = _decide_and_fetch(server, application(Age=18, **{"Credit amount": 1_000_000}))
    assert asked["decision"] == "refer" and kept["decision"] == "refer"
    assert kept == asked
    first = asked["reasons"][0]
    assert first["direction"] == "refer" and first["feature"] == "Credit amount"
    assert "1,000,000" in first["text"] and "18,424" in first["text"]
    # The model's own answer is still given beside the referral.
    assert asked["target"] in {"good risk", "bad risk"} and 0 <= asked["probability"] <= 1
    assert asked["is_fraud"] == (asked["probability"] >= asked["threshold"])

    normal, kept_normal = _decide_and_fetch(server, application())
    assert normal["decision"] == ("decline" if normal["is_fraud"] else "approve")
    assert kept_normal["decision"] == normal["decision"]
    assert all(r["direction"] != "refer" for r in normal["reasons"])


def test_within_the_margin_is_not_referred_and_an_old_bundle_never_refers(serve, referring_models):
    just_beyond = application(**{"Credit amount": 19_000})  # 18,424 + under 10% of the span
    far = application(Age=18, **{"Credit amount": 1_000_000})
    with serve(models_dir=referring_models).client() as client:
        assert client.post("/v1/decisions", json=just_beyond).json()["decision"] != "refer"
    with serve().client() as client:  # the fixture's models were saved without what training saw
        assert client.post("/v1/decisions", json=far).json()["decision"] != "refer"


def test_a_decision_stored_before_the_decision_column_reads_back_from_is_fraud(serve, referring_models):
    import sqlalchemy as sa

    server = serve(models_dir=referring_models)
    with server.client() as client:
        made = client.post("/v1/decisions", json=application()).json()
        engine = sa.create_engine(server.settings.database_url)
        with engine.begin() as connection:  # as a row written before migration 0004 holds it
            connection.execute(
                sa.text("UPDATE decisions SET decision = NULL WHERE id = :id"), {"id": made["id"]}
            )
        engine.dispose()
        kept = client.get(f"/v1/decisions/{made['id']}").json()
    assert kept["decision"] == ("decline" if made["is_fraud"] else "approve") == made["decision"]
