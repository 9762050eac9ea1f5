"""The store's migrations go both ways: each downgrade removes what its upgrade added and nothing
else, on SQLite and PostgreSQL, and the store upgrades again to the newest schema afterwards."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from service_helpers import application

import preauth.store as store_module
from preauth.outcomes import Outcome, outcome_of, record
from preauth.reviews import record_review, review_of
from preauth.store import DecisionStore, decisions, shadow_scores


def _alembic(store: DecisionStore, action: str, revision: str) -> None:
    """Run one Alembic command on the store, the way :func:`preauth.store.migrate` runs upgrades."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    with store.engine.connect() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)
        connection.commit()


def _revision(store: DecisionStore) -> str | None:
    with store.engine.connect() as connection:
        return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _referred(**changes: object) -> dict:
    """A stored row as the service writes it: a referred decision (so a person may review it)."""
    row = {
        "id": str(uuid.uuid4()),
        "request_id": "r",
        "created_at": datetime.now(UTC) - timedelta(days=1),
        "channel": "api",
        "model_version": "v1",
        "input": application(),
        "probability": 0.45,
        "target": "good risk",
        "is_fraud": False,
        "confidence": 0.55,
        "threshold": 0.5,
        "reasons": [],
        "contributions": {"Age": 0.1, "bias": -1.2},
        "decision": "refer",
    }
    row.update(changes)
    return row


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'migrations.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("fresh_postgres_url")
    )
    made = DecisionStore(url)
    yield made
    made.close()


def test_downgrades_undo_reviews_and_shadow_and_keep_older_data(store):
    store.migrate()
    row = _referred()
    with store.engine.begin() as connection:
        connection.execute(decisions.insert(), row)
        connection.execute(
            shadow_scores.insert(),
            {
                "decision_id": row["id"],
                "model_version": "v2",
                "probability": 0.6,
                "threshold": 0.5,
                "decision": "decline",
            },
        )
    known = datetime.now(UTC).replace(microsecond=0)  # after the decision (made a day ago)
    assert record(store, [Outcome(row["id"], "repaid", known)], source="test")[0].status == "created"
    assert (
        record_review(store, row["id"], reviewer="ana", decision="approve", reason="income checked").status
        == "created"
    )

    _alembic(store, "downgrade", "0005_reviews")  # 0006 undone: no shadow scores
    tables = set(sa.inspect(store.engine).get_table_names())
    assert "shadow_scores" not in tables and "reviews" in tables
    assert review_of(store, row["id"]).reviewer == "ana"

    _alembic(store, "downgrade", "0004")  # 0005 undone: no reviews, no review-queue index
    inspector = sa.inspect(store.engine)
    assert {"reviews", "shadow_scores"}.isdisjoint(inspector.get_table_names())
    assert "ix_decisions_decision" not in {i["name"] for i in inspector.get_indexes("decisions")}
    assert _revision(store) == "0004"
    with store.engine.connect() as connection:
        kept = connection.execute(sa.select(decisions)).mappings().one()
    assert (kept["id"], kept["decision"], kept["probability"], kept["input"]) == (
        row["id"],
        "refer",
        0.45,
        row["input"],
    )
    assert outcome_of(store, row["id"]) == Outcome(row["id"], "repaid", known)

    store.migrate()  # and up again: the tables come back, empty, and work
    assert _revision(store) == "0006_shadow"
    assert store.get(row["id"])["id"] == row["id"]
    assert review_of(store, row["id"]) is None
    assert (
        record_review(store, row["id"], reviewer="bo", decision="decline", reason="second look").status
        == "created"
    )
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(shadow_scores)).scalar() == 0


def test_downgrade_to_base_removes_every_table_and_upgrade_rebuilds_them(store):
    store.migrate()
    row = _referred()
    with store.engine.begin() as connection:
        connection.execute(decisions.insert(), row)
    _alembic(store, "downgrade", "0003")  # 0004 undone: the stored verdict column goes, the row stays
    assert "decision" not in {c["name"] for c in sa.inspect(store.engine).get_columns("decisions")}
    with store.engine.connect() as connection:
        assert connection.execute(
            sa.select(sa.column("id")).select_from(sa.table("decisions"))
        ).scalars().all() == [row["id"]]
    _alembic(store, "downgrade", "base")
    assert set(sa.inspect(store.engine).get_table_names()) <= {"alembic_version"}
    store.migrate()
    inspector = sa.inspect(store.engine)
    assert {"decisions", "idempotency_keys", "outcomes", "reviews", "shadow_scores"} <= set(
        inspector.get_table_names()
    )
    assert "decision" in {c["name"] for c in inspector.get_columns("decisions")}
    assert store.count() == 0
