"""Challengers: a shadow model scores every request beside production, and two versions are compared.

Real servers on both stores: the shadow is switched on and off with the real CLI while the server
runs, every route's decisions get their shadow score (and only production's answer), a broken
shadow costs production nothing, and the comparison's numbers match a direct computation from the
database with scikit-learn's AUC.
"""

from __future__ import annotations

import io
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from service_helpers import today
from sklearn.metrics import roc_auc_score

from preauth import applications, bundles, features
from preauth.cli import cli
from preauth.decisions import decided
from preauth.pipeline import bundled_data
from preauth.store import DecisionStore, Keep

pytestmark = pytest.mark.booster_path

FRAME = (
    applications.read_applications(bundled_data("german_credit_risk.csv"))
    .frame.head(60)
    .reset_index(drop=True)
)
NAMES = list(applications.GERMAN.field_names)
RECORDS: list[dict[str, Any]] = [
    {k: (None if v is None or (isinstance(v, float) and np.isnan(v)) else v) for k, v in row.items()}
    for row in FRAME[NAMES].astype(object).to_dict("records")
]
DEFAULTED = (FRAME["Risk"] == "bad").to_numpy()


def direct_probability(models_dir: Path, version: str, rows: slice) -> np.ndarray:
    """What the bundle itself says about these bundled applications, outside the service."""
    bundle = bundles.load_bundle(models_dir, version)
    return bundle.predict_proba(features.encode(FRAME.iloc[rows], bundle.features))


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def live(http: Any) -> dict[str, Any]:
    answer = http.get("/v1/models/compare")
    assert answer.status_code == 200, answer.text
    return answer.json()["live"]  # type: ignore[no-any-return]


def wait_for(http: Any, **expected: Any) -> None:
    """Until the server follows the aliases (it looks every 0.2 s in the tests)."""
    deadline = time.monotonic() + 10
    while {k: live(http)[k] for k in expected} != expected:
        assert time.monotonic() < deadline, f"the server never got to {expected}: {live(http)}"
        time.sleep(0.05)


def stored(database_url: str) -> list[dict[str, Any]]:
    """Every stored decision with its shadow score, its outcome, read with plain SQL."""
    engine = sa.create_engine(database_url)
    query = """
        SELECT d.id, d.model_version, d.probability, d.threshold, d.decision, d.channel,
               s.model_version AS shadow_version, s.probability AS shadow_probability,
               s.threshold AS shadow_threshold, s.decision AS shadow_decision, o.outcome
        FROM decisions d
        LEFT JOIN shadow_scores s ON s.decision_id = d.id
        LEFT JOIN outcomes o ON o.decision_id = d.id
        ORDER BY d.seq
    """
    with engine.connect() as connection:
        rows = [dict(r) for r in connection.execute(sa.text(query)).mappings()]
    engine.dispose()
    return rows


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'challengers.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


def test_a_shadow_scores_every_request_and_is_compared_with_production(
    serve: Any, own_models: Path, database_url: str
) -> None:
    server = serve(models_dir=own_models, database_url=database_url)
    v1 = direct_probability(own_models, "v1", slice(0, 60))
    v2 = direct_probability(own_models, "v2", slice(0, 60))
    with server.client() as http:
        unshadowed = http.post("/v1/decisions", json=RECORDS[0]).json()
        nothing = http.get("/v1/models/compare", params={"a": "v1", "b": "v2"})
        assert nothing.status_code == 422 and nothing.json()["error"]["errors"][0]["field"] == "b"

        done = run_cli("--models-dir", own_models, "models", "shadow", "v2")
        assert done.exit_code == 0 and "shadow → v2" in done.output
        wait_for(http, shadow="v2", shadow_loaded=True)

        single = http.post("/v1/decisions", json=RECORDS[1])
        batch = http.post("/v1/decisions/batch", json=RECORDS[2:30])
        invoked = http.post("/invocations", json={"instances": RECORDS[30:40]})
        text = io.StringIO()
        FRAME.iloc[40:50][NAMES].to_csv(text, index=False)
        csv_invoked = http.post("/invocations", content=text.getvalue(), headers={"content-type": "text/csv"})
        page = http.post("/ui/batch", files={"file": ("apps.csv", text.getvalue().encode(), "text/csv")})
        for answer in (single, batch, invoked, csv_invoked, page):
            assert answer.status_code in (200, 201), answer.text
            assert "v2" not in answer.text and "shadow" not in answer.text  # never answered

        # The answers are production's (v1), to the digit.
        answered = [single.json(), *batch.json()["decisions"]]
        assert [d["model_version"] for d in answered] == ["v1"] * 29
        assert np.allclose([d["probability"] for d in answered], v1[1:30], atol=1e-6)
        assert np.allclose([r["probability_fraud"] for r in invoked.json()], v1[30:40], atol=1e-6)
        assert np.allclose([r["probability_fraud"] for r in csv_invoked.json()], v1[40:50], atol=1e-6)

        rows = stored(database_url)
        assert len(rows) == 1 + 29 + 10 + 10 + 10
        assert rows[0]["id"] == unshadowed["id"] and rows[0]["shadow_version"] is None
        assert all(r["shadow_version"] == "v2" for r in rows[1:]), "a decision without its shadow score"
        assert {r["channel"] for r in rows[1:]} == {"api", "invocations", "page-batch"}
        shadow_by_id = {r["id"]: r for r in rows}
        # The shadow's score is v2's own, and its decision follows v2's threshold.
        assert np.allclose(
            [shadow_by_id[d["id"]]["shadow_probability"] for d in answered], v2[1:30], atol=1e-6
        )
        for r in rows[1:]:
            expected = "decline" if r["shadow_probability"] >= r["shadow_threshold"] else "approve"
            assert r["shadow_decision"] == expected

        # Outcomes for the API's decisions: both classes among them.
        for i, d in enumerate(answered, start=1):
            outcome = "defaulted" if DEFAULTED[i] else "repaid"
            posted = http.post(
                f"/v1/decisions/{d['id']}/outcome", json={"outcome": outcome, "known_at": today()}
            )
            assert posted.status_code == 201

        # Then the other way round: v2 promoted, v1 in the shadow.
        assert run_cli("--models-dir", own_models, "models", "promote", "v2").exit_code == 0
        wait_for(http, production="v2")  # the shadow (v2) is production now: it shadows nothing
        same = http.get("/v1/models/compare").json()
        assert same["b"] is None and "v2 is the production model" in same["message"], same
        assert run_cli("--models-dir", own_models, "models", "shadow", "v1").exit_code == 0
        wait_for(http, production="v2", shadow="v1", shadow_loaded=True)
        reverse = http.post("/v1/decisions/batch", json=RECORDS[50:60])
        assert [d["model_version"] for d in reverse.json()["decisions"]] == ["v2"] * 10

        compared = http.get("/v1/models/compare", params={"a": "v1", "b": "v2"})
        assert compared.status_code == 200, compared.text
        result = compared.json()
        by_alias = http.get("/v1/models/compare", params={"a": "shadow", "b": "production"}).json()
        assert (by_alias["a"], by_alias["b"], by_alias["n"], by_alias["a_in_production"]) == (
            "v1",
            "v2",
            69,
            59,
        )

        off = run_cli("--models-dir", own_models, "models", "shadow", "--off")
        assert off.exit_code == 0 and "was v1" in off.output
        wait_for(http, shadow=None)
        last = http.post("/v1/decisions", json=RECORDS[0]).json()
    assert [r for r in stored(database_url) if r["id"] == last["id"]][0]["shadow_version"] is None

    # The comparison against a direct computation from the rows.
    rows = [r for r in stored(database_url) if r["shadow_version"] is not None]
    p_a = np.array(
        [r["probability"] if r["model_version"] == "v1" else r["shadow_probability"] for r in rows]
    )
    p_b = np.array(
        [r["shadow_probability"] if r["model_version"] == "v1" else r["probability"] for r in rows]
    )
    d_a = [r["decision"] if r["model_version"] == "v1" else r["shadow_decision"] for r in rows]
    d_b = [r["shadow_decision"] if r["model_version"] == "v1" else r["decision"] for r in rows]
    assert result["n"] == len(rows) == 69
    assert (result["a_in_production"], result["b_in_production"]) == (59, 10)
    assert result["agreement"]["same"] == sum(x == y for x, y in zip(d_a, d_b, strict=True))
    assert result["agreement"]["rate"] == pytest.approx(result["agreement"]["same"] / 69)
    assert 0 < result["agreement"]["same"] < 69, "the two fixture models should disagree somewhere"
    assert result["score_shift"]["mean"] == pytest.approx(float(np.mean(p_b - p_a)))
    assert result["score_shift"]["quantiles"]["p50"] == pytest.approx(float(np.median(p_b - p_a)))
    assert sum(result["score_shift"]["histogram"]["counts"]) == 69
    assert result["score_shift"]["higher"] == int(np.sum(p_b > p_a))
    assert result["score_shift"]["lower"] == int(np.sum(p_b < p_a))
    confusion = result["decisions"]
    assert sum(sum(row.values()) for row in confusion.values()) == 69
    assert confusion["approve"]["decline"] == sum(
        x == "approve" and y == "decline" for x, y in zip(d_a, d_b, strict=True)
    )

    known = [i for i, r in enumerate(rows) if r["outcome"] is not None]
    y = np.array([rows[i]["outcome"] == "defaulted" for i in known], dtype=int)
    outcomes = result["outcomes"]
    assert outcomes["n"] == 29 and outcomes["defaulted"] == int(y.sum())
    auc_a, auc_b = roc_auc_score(y, p_a[known]), roc_auc_score(y, p_b[known])
    assert outcomes["auc_a"]["value"] == pytest.approx(auc_a)
    assert outcomes["auc_b"]["value"] == pytest.approx(auc_b)
    assert outcomes["auc_difference"]["value"] == pytest.approx(auc_b - auc_a)
    threshold_a, threshold_b = rows[0]["threshold"], rows[0]["shadow_threshold"]
    for key, p, threshold in (("cost_a", p_a, threshold_a), ("cost_b", p_b, threshold_b)):
        refused = p[known] >= threshold
        cost = (5 * np.sum(~refused & (y == 1)) + 1 * np.sum(refused & (y == 0))) / len(y)
        assert outcomes[key]["value"] == pytest.approx(cost)
    for block in (result["agreement"], result["score_shift"]):
        low, high = block["interval"]
        assert low < high and low <= block.get("rate", block.get("mean")) <= high
    for key in ("auc_a", "auc_b", "auc_difference", "cost_a", "cost_b", "cost_difference"):
        low, high = outcomes[key]["interval"]
        assert low <= outcomes[key]["value"] <= high, key

    # The CLI says the same.
    as_json = run_cli(
        "--models-dir",
        own_models,
        "models",
        "compare",
        "v1",
        "v2",
        "--database-url",
        database_url,
        "--format",
        "json",
        "--resamples",
        "200",
    )
    assert as_json.exit_code == 0, as_json.output
    cli_result = json.loads(as_json.output)
    for key in (
        "n",
        "a_in_production",
        "agreement.same",
        "score_shift.mean",
        "outcomes.auc_b.value",
        "outcomes.cost_a.value",
    ):
        api_value: Any = result
        cli_value: Any = cli_result
        for part in key.split("."):
            api_value, cli_value = api_value[part], cli_value[part]
        assert cli_value == pytest.approx(api_value), key
    table = run_cli(
        "--models-dir", own_models, "models", "compare", "production", "v1", "--database-url", database_url
    )
    assert table.exit_code == 0, table.output
    assert "v2 (A) against v1 (B) on 69 decisions" in table.output
    assert "agreement (same decision):" in table.output and "ROC AUC: A " in table.output
    before = run_cli(
        "--models-dir",
        own_models,
        "models",
        "compare",
        "v1",
        "v2",
        "--database-url",
        database_url,
        "--until",
        "2020-01-01",
    )
    assert before.exit_code == 0 and before.output.startswith("nothing to compare")


def test_a_broken_shadow_costs_production_nothing(
    serve: Any, own_models: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database_url = f"sqlite:///{tmp_path / 'broken.db'}"
    # The alias names a version that is not there: the server starts and decides all the same.
    bundles.write_json_atomic(own_models / bundles.ALIASES_FILE, {"production": "v1", "shadow": "v9"})
    with caplog.at_level(logging.WARNING, logger="preauth.service"):
        server = serve(models_dir=own_models, database_url=database_url)
        with server.client() as http:
            assert live(http)["shadow"] == "v9" and not live(http)["shadow_loaded"]
            missing = http.post("/v1/decisions/batch", json=RECORDS[:3])

            # A damaged bundle as the shadow: not loaded, said in the log, production untouched.
            damaged = own_models / "v3"
            damaged.mkdir()
            meta = json.loads((own_models / "v2" / bundles.META_FILE).read_text())
            (damaged / bundles.META_FILE).write_text(json.dumps({**meta, "version": "v3"}))
            (damaged / bundles.SCHEMA_FILE).write_bytes(
                (own_models / "v2" / bundles.SCHEMA_FILE).read_bytes()
            )
            (damaged / bundles.MODEL_FILE).write_bytes(b"not a model")
            refused = run_cli("--models-dir", own_models, "models", "shadow", "v3")
            assert refused.exit_code == 3 and "cannot load model.ubj" in refused.output
            bundles.write_json_atomic(own_models / bundles.ALIASES_FILE, {"production": "v1", "shadow": "v3"})
            wait_for(http, shadow="v3")
            error_seen = live(http)["shadow_error"]
            assert "models/v3: cannot load model.ubj" in error_seen
            broken = http.post("/v1/decisions", json=RECORDS[3])

            # A shadow that fails while scoring: production's answer goes out all the same.
            assert run_cli("--models-dir", own_models, "models", "shadow", "v2").exit_code == 0
            wait_for(http, shadow="v2", shadow_loaded=True)
            shadow = server.app.state.runtime.source.shadow.served

            def explode(*args: Any, **kwargs: Any) -> Any:
                raise RuntimeError("the challenger's trees caught fire")

            shadow.shadow_scores = explode
            failing = http.post("/invocations", json=RECORDS[4])
            metrics = http.get("/metrics").text
    for answer in (missing, broken, failing):
        assert answer.status_code in (200, 201), answer.text
    rows = stored(database_url)
    assert len(rows) == 5 and all(r["model_version"] == "v1" and r["shadow_version"] is None for r in rows)
    assert 'preauth_shadow_scores_total{model_version="v9",outcome="failed"} 3.0' in metrics
    assert 'preauth_shadow_scores_total{model_version="v3",outcome="failed"} 1.0' in metrics
    assert 'preauth_shadow_scores_total{model_version="v2",outcome="failed"} 1.0' in metrics
    said = [r.getMessage() for r in caplog.records]
    assert any("shadow model v3 cannot be loaded" in m for m in said)
    assert any(
        "shadow model v2 did not score 1 application(s): the challenger's trees caught fire" in m
        for m in said
    )
    assert str(tmp_path) not in json.dumps(error_seen)


def test_nothing_to_compare_is_said_plainly(tmp_path: Path, models_dir: Path) -> None:
    """Both versions decided, neither shadowed the other: one clear line, and a version the store
    never saw is refused naming it."""
    url = f"sqlite:///{tmp_path / 'apart.db'}"
    store = DecisionStore(url)
    store.migrate()
    made = [
        decided(
            id=f"d-{version}",
            request_id="r",
            created_at=datetime.now(UTC),
            channel="api",
            model_version=version,
            input=RECORDS[0],
            probability=0.3,
            threshold=0.5,
            reasons=[],
            contributions=None,
        )
        for version in ("v1", "v2")
    ]
    store.save([Keep(made)])
    store.close()
    apart = run_cli("--models-dir", models_dir, "models", "compare", "v1", "v2", "--database-url", url)
    assert apart.exit_code == 0
    assert apart.output.startswith("nothing to compare: no stored decision has scores of both v1 and v2")
    unknown = CliRunner().invoke(
        cli, ["--models-dir", str(models_dir), "models", "compare", "v1", "v7", "--database-url", url]
    )
    assert unknown.exit_code == 2
    assert "v7 has no decision or shadow score in this store (versions seen: v1, v2)" in unknown.output
    same = CliRunner().invoke(
        cli, ["--models-dir", str(models_dir), "models", "compare", "v1", "v1", "--database-url", url]
    )
    assert same.exit_code == 2 and "compare two different versions" in same.output


def test_a_shadow_trained_on_another_schema_checks_applications_with_its_own(
    tmp_path: Path, models_dir: Path
) -> None:
    """A challenger with a narrower schema (Age up to 60) scores what it accepts; an application
    only production accepts is decided without a shadow score, and counted."""
    from service_helpers import application, run_async

    from preauth.applications import GERMAN, parse_schema
    from preauth.service.intake import check_records
    from preauth.service.observability import Telemetry
    from preauth.service.serving import Decider, ModelSource

    models = tmp_path / "models"
    v1 = bundles.load_bundle(models_dir, "v1")
    kept = {k: v1.meta[k] for k in ("params", "metrics")}
    bundles.save_bundle(models, v1.booster, features=v1.features, threshold=0.5, meta=kept)
    toml = GERMAN.to_toml().replace("minimum = 18\nmaximum = 100", "minimum = 18\nmaximum = 60", 1)
    young = parse_schema(toml, "young.toml")
    assert young.fingerprint != GERMAN.fingerprint
    bundles.save_bundle(models, v1.booster, features=v1.features, threshold=0.5, meta=kept, schema=young)
    bundles.promote(models, "v1")
    bundles.promote(models, "v2", bundles.SHADOW)
    telemetry = Telemetry()
    decider = Decider(ModelSource(models), telemetry)
    accepted = check_records([application(Age=30), application(Age=67)]).accepted
    made = run_async(decider.decide(accepted, request_id="r", channel="api"))
    assert [d.model_version for d in made] == ["v1", "v1"]
    assert made[0].shadow is not None and made[0].shadow.model_version == "v2"
    assert made[0].shadow.probability == pytest.approx(made[0].probability)  # the same trees
    assert made[1].shadow is None
    exposed = telemetry.exposition().decode()
    assert 'preauth_shadow_scores_total{model_version="v2",outcome="scored"} 1.0' in exposed
    assert 'preauth_shadow_scores_total{model_version="v2",outcome="failed"} 1.0' in exposed
