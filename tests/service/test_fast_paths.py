"""The service's fast paths give what the ordinary paths give, and fail safe."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from service_helpers import application

from preauth import bundles
from preauth.service.intake import check_records
from preauth.service.serving import Served

pytestmark = pytest.mark.booster_path


def test_c_api_calls_match_the_python_api_on_many_applications(models_dir):
    served = Served(bundles.load_bundle(models_dir, "v2"))
    assert served.calls is not None, "fast calls were refused on this XGBoost"
    rng = np.random.default_rng(0)
    records = [
        application(
            Age=int(rng.integers(18, 100)),
            Duration=int(rng.integers(1, 72)),
            Housing=str(rng.choice(["own", "rent", "free"])),
            **{
                "Credit amount": float(rng.uniform(100, 20000)),
                "Saving accounts": rng.choice(["little", "moderate", "rich", None]),
                "Checking account": rng.choice(["little", "moderate", "rich", None]),
            },
        )
        for _ in range(200)
    ]
    accepted = check_records(records).accepted
    fast = served.decide(accepted, request_id="r", channel="api")
    served.calls = None  # the XGBoost Python API
    slow = served.decide(accepted, request_id="r", channel="api")
    assert [d["probability"] for d in fast] == [d["probability"] for d in slow]
    assert [d["contributions"] for d in fast] == [d["contributions"] for d in slow]
    assert [d["reasons"] for d in fast] == [d["reasons"] for d in slow]


def test_a_failed_commit_is_never_acknowledged(serve, tmp_path):
    url = f"sqlite:///{tmp_path / 'broken.db'}"
    server = serve(database_url=url)
    with server.client() as client:
        assert client.post("/v1/decisions", json=application()).status_code == 201
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE decisions RENAME TO decisions_gone")
        refused = client.post("/v1/decisions", json=application())
        with engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE decisions_gone RENAME TO decisions")
        engine.dispose()
        again = client.post("/v1/decisions", json=application())
    assert refused.status_code == 503
    assert refused.json()["error"]["message"].startswith("the decision store refused the write")
    assert "decisions_gone" not in refused.text and "Traceback" not in refused.text
    assert again.status_code == 201


def test_the_setting_turns_the_c_api_off_and_decisions_stay_the_same(serve, tmp_path):
    fast = serve(database_url=f"sqlite:///{tmp_path / 'fast.db'}", fast_booster_calls=True)
    plain = serve(database_url=f"sqlite:///{tmp_path / 'plain.db'}", fast_booster_calls=False)
    assert fast.app.state.runtime.source.current.calls is not None
    assert plain.app.state.runtime.source.current.calls is None
    answers = []
    for server in (fast, plain):
        with server.client() as client:
            answers.append(client.post("/v1/decisions", json=application(Age=52)).json())
    assert answers[0]["probability"] == answers[1]["probability"]
    assert answers[0]["contributions"] == answers[1]["contributions"]


def test_c_api_calls_only_on_tested_xgboost_versions(models_dir, monkeypatch, caplog):
    import xgboost

    from preauth.service import booster_calls

    assert booster_calls.tested_version(xgboost.__version__), "pin the XGBoost these calls were tested on"
    assert booster_calls.tested_version("3.2.1rc1")
    assert not booster_calls.tested_version("3.3.0") and not booster_calls.tested_version("2.1.4")
    assert not booster_calls.tested_version("nonsense")
    monkeypatch.setattr(xgboost, "__version__", "9.0.0")
    with caplog.at_level("WARNING", logger="preauth.service"):
        served = Served(bundles.load_bundle(models_dir, "v1"))
    assert served.calls is None
    assert "not tested on XGBoost 9.0.0" in caplog.text


def test_the_c_api_has_its_own_library_handle_with_declared_types():
    import xgboost.core

    from preauth.service.booster_calls import _library

    lib = _library()
    assert lib is not xgboost.core._LIB
    for name in ("XGBoosterPredictFromDense", "XGBoosterPredictFromDMatrix", "XGDMatrixCreateFromDense"):
        assert getattr(lib, name).argtypes is not None
        assert getattr(xgboost.core._LIB, name).argtypes is None  # XGBoost's own handle is untouched
