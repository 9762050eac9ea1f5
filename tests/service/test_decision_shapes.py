"""One Decision, every shape: what the service made reads back from either store in the same shapes."""

from __future__ import annotations

import orjson
import pytest
from service_helpers import application

from preauth.decisions import RESULT_KEYS, ROW_COLUMNS, Decision
from preauth.service.intake import check_records
from preauth.service.serving import ModelSource
from preauth.store import DecisionStore, Keep, decisions

pytestmark = pytest.mark.booster_path

API_KEYS = [
    "id", "request_id", "timestamp", "model_version", "input", "probability", "target", "is_fraud",
    "decision", "confidence", "threshold", "reasons", "contributions", "channel",
]  # fmt: skip


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_stored_decision_reads_back_in_every_shape_it_was_made_in(backend, models_dir, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'd.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    store = DecisionStore(url)
    store.migrate()
    with store.engine.begin() as connection:
        connection.execute(decisions.delete())
    served = ModelSource(models_dir, "v1").current
    checked = check_records([application(), application(Age=70, Duration=60, **{"Credit amount": 15000})])
    made = served.decide(checked.accepted, request_id="r-1", channel="api")
    assert {d.decision for d in made} <= {"approve", "decline"}

    assert store.save([Keep(made)]) == [made]
    for decision in made:
        back = store.get(decision.id)
        assert back == decision and not back.replayed
        assert orjson.dumps(back.api()) == orjson.dumps(decision.api())
        assert orjson.dumps(back.result_object()) == orjson.dumps(decision.result_object())
        assert list(decision.api()) == API_KEYS and list(decision.result_object()) == list(RESULT_KEYS)
        assert decision.api()["timestamp"].endswith("+00:00")
        assert tuple(decision.row()) == ROW_COLUMNS and Decision.from_row(decision.row()) == decision
        assert decision["probability"] == decision.probability
    store.close()
