"""Reasons: TreeSHAP contributions that add up to the model's margin, and at most four reasons."""

from __future__ import annotations

import math

import numpy as np
import pytest
from service_helpers import application

from preauth import applications, bundles, features, reasons
from preauth.pipeline import bundled_data

pytestmark = pytest.mark.booster_path


def test_contributions_sum_to_the_margin_of_the_answered_probability(serve):
    server = serve()
    bodies = [
        application(),
        application(
            Age=22, Duration=48, Purpose="business", **{"Credit amount": 15000, "Checking account": None}
        ),
        application(Age=60, Housing="free", Duration=6, **{"Saving accounts": "rich"}),
    ]
    with server.client() as client:
        answers = [client.post("/v1/decisions", json=b).json() for b in bodies]
    for decision in answers:
        p = decision["probability"]
        total = sum(decision["contributions"].values())
        assert total == pytest.approx(math.log(p / (1 - p)), abs=1e-4)
        assert set(decision["contributions"]) == {*applications.feature_columns(), "bias"}
        assert 1 <= len(decision["reasons"]) <= 4
        for reason in decision["reasons"]:
            assert reason["contribution"] == pytest.approx(
                decision["contributions"][reason["feature"]], abs=1e-6
            )
            assert reason["direction"] == (
                "towards bad risk" if reason["contribution"] > 0 else "towards good risk"
            )
            verb = "raised the risk" if reason["contribution"] > 0 else "lowered the risk"
            assert reason["text"].startswith(reason["feature"]) and reason["text"].endswith(verb)
        strongest = max((c for f, c in decision["contributions"].items() if f != "bias"), key=abs)
        assert any(abs(r["contribution"] - strongest) < 1e-6 for r in decision["reasons"])


def test_explain_for_batch_scoring_matches_the_booster(models_dir):
    bundle = bundles.load_bundle(models_dir)
    apps = applications.read_applications(str(bundled_data("german_credit_data.csv")))
    frame = apps.frame.iloc[:50]
    matrix = features.encode(frame, bundle.features)
    margins = np.log(bundle.predict_proba(matrix) / (1 - bundle.predict_proba(matrix)))
    contribs = reasons.contributions(bundle, matrix)
    np.testing.assert_allclose(contribs.sum(axis=1), margins, atol=1e-4)
    explained = reasons.explain(bundle, matrix, frame)
    assert len(explained) == 50 and all(1 <= len(r) <= 4 for r in explained)
    first = explained[0]
    assert all(isinstance(r, reasons.Reason) for r in first)


def test_principal_reasons_split_between_both_directions():
    names = ["Age", "Job", "Housing", "Duration", "Purpose", "Credit amount"]
    values = [30.0, 2.0, "own", 24.0, "car", 1000.0]
    row = [0.9, 0.5, 0.3, -0.8, -0.1, 0.0, -0.2]  # bias last
    picked = reasons.principal_reasons(names, values, row)
    assert [r.feature for r in picked] == ["Age", "Job", "Duration", "Purpose"]
    only_bad = reasons.principal_reasons(names, values, [0.9, 0.5, 0.3, 0.2, 0.1, 0.0, 0.0])
    assert [r.feature for r in only_bad] == ["Age", "Job", "Housing", "Duration"]
    good_first = reasons.principal_reasons(names, values, [0.1, 0.0, 0.0, -0.8, -0.3, 0.0, -1.0])
    assert [r.direction for r in good_first] == ["towards good risk", "towards good risk", "towards bad risk"]
    assert good_first[0].text == "Duration of 24 months lowered the risk"
    unknown = reasons.principal_reasons(["Saving accounts"], ["unknown"], [0.4, 0.0])
    assert unknown[0].text == "Saving accounts not known raised the risk"
    wording = reasons.principal_reasons(
        ["Credit amount", "Job", "Housing"], [15000.0, 2.0, "rent"], [0.9, 0.5, 0.3, 0.0]
    )
    assert [r.text for r in wording] == [
        "Credit amount of 15,000 DM raised the risk",
        "Job: skilled (2) raised the risk",
        "Housing: rent raised the risk",
    ]


def test_a_calibrated_model_answers_calibrated_probabilities_and_explains_its_margin(serve, own_models):
    import json

    from preauth.calibration import Calibration

    path = own_models / "v1"  # production
    meta = json.loads((path / "bundle.json").read_text())
    meta["calibration"] = {"method": "platt", "a": 0.6, "b": -0.9}
    (path / "bundle.json").write_text(json.dumps(meta))
    calibration = Calibration.from_json(meta["calibration"])
    server = serve(models_dir=own_models)
    bodies = [application(), application(Age=22, Duration=48, **{"Credit amount": 15000})]
    with server.client() as client:
        answers = [client.post("/v1/decisions", json=b).json() for b in bodies]
        original = client.post("/invocations", json=bodies[0]).json()
        card = client.get("/v1/model").json()
    assert card["calibration"]["method"] == "platt" and card["calibration"]["a"] == 0.6
    assert "reasons explain the booster's margin" in card["calibration"]["note"]
    for decision in answers:
        margin = sum(decision["contributions"].values())
        raw = 1 / (1 + math.exp(-margin))
        assert decision["probability"] == pytest.approx(
            float(calibration.apply(np.array([raw]))[0]), abs=1e-5
        )
        assert abs(decision["probability"] - raw) > 1e-3
        assert decision["target"] == (
            "bad risk" if decision["probability"] >= meta["threshold"] else "good risk"
        )
    first = original[0] if isinstance(original, list) else original
    assert first["probability_fraud"] == pytest.approx(answers[0]["probability"], abs=1e-9)
