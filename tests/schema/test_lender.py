"""A lender's own file, with columns preauth has never seen: infer → check → prepare → train on
outcomes → predict, and the bundle carries the schema. No code is edited on the way."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lender_data import lender_frame, write_lender_csv

from preauth.applications import GERMAN, dump_schema, load_schema, read_applications
from preauth.bundles import SCHEMA_FILE, load_bundle
from preauth.errors import ModelBundleError
from preauth.referral import BAND_FEATURE

PREAUTH = [sys.executable, "-c", "from preauth.cli import main; main()"]


def preauth(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PREAUTH, *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def lender(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lender's file, its schema as inferred, then edited as a user would (in ``lender.toml``)."""
    work = tmp_path_factory.mktemp("lender")
    write_lender_csv(work / "lender.csv", rows=400)
    done = preauth("schema", "infer", "lender.csv", "--target", "Status", "-o", "proposed.toml", cwd=work)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "14 fields, target 'Status', id 'Ref' → proposed.toml"
    proposed = load_schema(work / "proposed.toml")
    # The user confirms the proposal's questions: savings are ordered and missing means no account;
    # and adds the lender's rule that more savings never make an applicant riskier.
    fields = tuple(
        dataclasses.replace(
            f,
            categories=("none", "low", "medium", "high"),
            ordered=True,
            missing="no account",
            direction="decreasing",
        )
        if f.name == "Savings"
        else dataclasses.replace(f, direction="increasing")
        if f.name == "Amount"
        else f
        for f in proposed.fields
    )
    edited = dataclasses.replace(proposed, fields=fields, name="lender")
    (work / "lender.toml").write_text(dump_schema(edited), encoding="utf-8")
    return work


def test_infer_proposes_kinds_ranges_the_id_the_target_and_the_questions_to_confirm(lender: Path) -> None:
    text = (lender / "proposed.toml").read_text()
    schema = load_schema(lender / "proposed.toml")
    assert schema.id_column == "Ref"
    assert schema.target is not None and schema.target.bad == ("2",) and schema.target.good == ("1",)
    assert "# Target 'Status': bad = 2 (guessed; confirm it or pass --bad VALUE); good = 1." in text
    assert schema.field_names == (
        "Seniority", "Home", "Time", "Age", "Marital", "Records", "Job",
        "Expenses", "Income", "Assets", "Debt", "Amount", "Price", "Savings",
    )  # fmt: skip
    assert schema.protected == ("Marital",)
    assert schema.refer_margin == 0.1 and "\nrefer_margin = 0.1\n" in text  # written out, to edit
    job, income, savings, age = (schema.field(n) for n in ("Job", "Income", "Savings", "Age"))
    assert job.is_category and set(job.categories) == {"fixed", "freelance", "partime", "others"}
    assert income.kind == "integer" and income.missing == "not given"
    assert "confirm what a missing value means" in text
    assert savings.is_category and "none" in savings.categories and savings.missing == "unknown"
    assert age.kind == "integer" and age.minimum is not None and age.minimum < 18 and age.maximum > 69


def test_infer_names_an_unnamed_id_column_in_words(tmp_path: Path, bundled_risk: Path) -> None:
    """German Credit's CSV saves its row index under an empty header: the note read "'' looks
    like an applicant id"."""
    done = preauth("schema", "infer", bundled_risk, "--target", "Risk", "-o", "g.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "g.toml").read_text()
    assert "# The column with no name looks like an applicant id (a saved row index)" in text
    assert "''" not in text and load_schema(tmp_path / "g.toml").id_column == "id"


def test_infer_guesses_a_text_coded_target_and_takes_bad_from_the_user(tmp_path: Path) -> None:
    write_lender_csv(tmp_path / "text.csv", rows=60, status=("bad", "good"))
    assert (
        preauth("schema", "infer", "text.csv", "--target", "status", "-o", "t.toml", cwd=tmp_path).returncode
        == 0
    )
    target = load_schema(tmp_path / "t.toml").target
    assert target is not None and (target.bad, target.good) == (("bad",), ("good",))
    done = preauth(
        "schema", "infer", "text.csv", "--target", "Status", "--bad", "good", "-o", "u.toml", cwd=tmp_path
    )
    assert done.returncode == 0
    target = load_schema(tmp_path / "u.toml").target
    assert target is not None and target.bad == ("good",)
    wrong = preauth("schema", "infer", "text.csv", "--target", "Status", "--bad", "maybe", cwd=tmp_path)
    assert wrong.returncode == 2
    assert wrong.stderr == (
        "preauth: error: text.csv: --bad maybe: the column 'Status' has no such value; its values are: good, bad\n"
    )


def test_infer_keeps_to_numbers_preauth_can_keep(tmp_path: Path) -> None:
    """1e400 (infinity to a float) and 1e20 (past 2**53) are refused when read, so the proposed
    range comes from the other values and says so; a column of nothing else is left out. Infinity
    used to crash infer with a traceback."""
    (tmp_path / "big.csv").write_text(
        "income,amount,age,status\n1e400,1e400,30,good\n5,inf,41,bad\n7,1e20,52,good\n9,-inf,28,bad\n"
    )
    done = preauth("schema", "infer", "big.csv", "--target", "status", "-o", "b.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    schema = load_schema(tmp_path / "b.toml")
    income = schema.field("income")
    assert (income.minimum, income.maximum) == (4, 10) and income.kind == "integer"  # 5..9 with its margin
    text = (tmp_path / "b.toml").read_text()
    assert "1 value(s) such as '1e400' are not finite" in text
    assert "'amount' holds no number preauth can keep exactly (e.g. '1e400'): left out" in text
    assert "amount" not in [f.name for f in schema.fields]


def test_infer_takes_an_example_a_row_holds(tmp_path: Path) -> None:
    """The median of 0.1 and 0.2 was proposed as ``example = 0.15000000000000002``."""
    (tmp_path / "f.csv").write_text("rate,status\n0.1,good\n0.2,bad\n0.1,good\n0.2,bad\n")
    done = preauth("schema", "infer", "f.csv", "--target", "status", "-o", "f.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert load_schema(tmp_path / "f.toml").field("rate").example in (0.1, 0.2)
    assert "0.15000000000000002" not in (tmp_path / "f.toml").read_text()


def test_check_reports_each_row_and_column_that_does_not_fit(lender: Path) -> None:
    frame = lender_frame(rows=400).head(5).astype(str)
    frame.loc[1, "Status"] = "7"
    frame.loc[2, "Age"] = "abc"
    frame.loc[3, "Home"] = "castle"
    frame.loc[4, "Income"] = ""  # allowed: the schema says a missing income means "not given"
    frame.to_csv(lender / "some.csv", index=False)
    done = preauth("schema", "check", "some.csv", "--schema", "lender.toml", cwd=lender)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "preauth: rejected: some.csv, row 2, column 'Status': '7' is not one of: 1, 2",
        "preauth: rejected: some.csv, row 3, column 'Age': 'abc' is not a whole number",
        "preauth: rejected: some.csv, row 4, column 'Home': 'castle' is not one of: "
        + ", ".join(load_schema(lender / "lender.toml").field("Home").categories),
    ]
    assert done.stdout == "2 of 5 rows fit the schema 'lender'\n"
    assert preauth("schema", "check", "lender.csv", "--schema", "lender.toml", cwd=lender).returncode == 0
    # PREAUTH_SCHEMA names the schema for every stage, like --schema.
    import os

    env = {**os.environ, "PREAUTH_SCHEMA": str(lender / "lender.toml")}
    by_env = subprocess.run(
        [*PREAUTH, "schema", "check", "some.csv"], capture_output=True, text=True, cwd=lender, env=env
    )
    assert by_env.returncode == 2 and by_env.stdout == done.stdout


def test_the_lender_file_is_read_with_its_missing_meanings_and_target(lender: Path) -> None:
    schema = load_schema(lender / "lender.toml")
    apps = read_applications(lender / "lender.csv", schema=schema)
    assert not apps.rejects and apps.has_ids and apps.ids.iloc[0] == "L1000"
    raw = lender_frame(rows=400)
    no_savings = (raw["Savings"] == "").to_numpy()
    assert (apps.frame["Savings"].to_numpy()[no_savings] == "no account").all()
    assert apps.frame["Income"].isna().sum() == (raw["Income"] == "").sum()
    assert set(apps.outcome()) == {"bad", "good"}
    assert (apps.outcome().to_numpy() == "bad").sum() == (raw["Status"] == "2").sum()


@pytest.fixture(scope="module")
def lender_models(lender: Path) -> Path:
    """prepare → train on the real outcomes, through the CLI, as the README says."""
    models = lender / "models"
    prepared = preauth("prepare", "lender.csv", "--schema", "lender.toml", "-o", "prepared.csv", cwd=lender)
    assert prepared.returncode == 0, prepared.stderr
    trained = preauth(
        "--models-dir", models, "train", "prepared.csv", "--schema", "lender.toml", "--target", "risk",
        "--trials", "3", "--no-progress", cwd=lender,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    return models


def test_prepare_train_on_outcomes_and_predict_with_the_bundles_schema(
    lender: Path, lender_models: Path
) -> None:
    models = lender_models
    bundle = load_bundle(models)
    schema = load_schema(lender / "lender.toml")
    assert bundle.schema == schema and bundle.meta["schema_fingerprint"] == schema.fingerprint
    assert (bundle.path / SCHEMA_FILE).read_text() == schema.to_toml()
    assert "Marital" not in bundle.features and "Savings" in bundle.features
    assert bundle.metrics["holdout"]["measured_against"] == "real outcome (Status)"
    assert bundle.metrics["holdout"]["roc_auc"] > 0.7  # the outcome follows the columns
    report = (bundle.path / "report.html").read_text()
    assert "real outcome (Status)" in report and "Marital is <b>not</b> an input of this model" in report
    # The lender's directions are constraints, the ordered category's along its levels, and hold.
    codes = bundle.meta["params"]["monotone_constraints"].strip("()").split(",")
    assert {bundle.features[j]: c for j, c in enumerate(codes) if c != "0"} == {
        "Amount": "1",
        "Savings": "-1",
    }
    assert "risk never rises as <b>Savings</b> moves up its levels (none → low → medium → high)" in report
    assert "Savings: 0 applicants whose risk rises anywhere as it moves up its levels" in report
    assert "Approval rate by Marital" in report or "<th>Marital</th>" in report
    assert "Trained on the real outcomes (Status) themselves" in report  # the lender's own target, not Risk
    # predict reads the file with the model's schema: no --schema needed, ids kept in the results.
    done = preauth("--models-dir", models, "predict", "lender.csv", "-o", "results", "--explain", cwd=lender)
    assert done.returncode == 0, done.stderr
    results = json.loads(next((lender / "results").glob("*.json")).read_text())
    assert len(results) == 400 and results[0]["id"] == "L1000"
    assert list(results[0]) == ["id", "input_data", "probability_fraud", "is_fraud", "target", "confidence",
                                "timestamp", "decision", "reasons"]  # fmt: skip
    assert set(results[0]["input_data"]) == set(schema.field_names)
    features = {r["feature"] for result in results for r in result["reasons"]}
    assert features <= {
        *bundle.features,
        BAND_FEATURE,
    }  # a borderline decision's reason names the probability
    # A reason about a missing balance speaks the schema's meaning of missing ("no account").
    savings = [
        (result["input_data"]["Savings"] is None, r["text"])
        for result in results
        for r in result["reasons"]
        if r["feature"] == "Savings"
    ]
    assert savings and all(text.startswith("Savings: no account ") == missing for missing, text in savings)
    # Without its schema the file is what it was before: the German schema refuses it in one line.
    german = preauth("prepare", "lender.csv", "-o", "g.csv", cwd=lender)
    assert (
        german.returncode == 2
        and german.stderr == "preauth: error: lender.csv: missing required column 'Housing'\n"
    )


def test_run_trains_on_real_outcomes_when_the_provider_cannot_label_the_schema(lender: Path) -> None:
    done = preauth(
        "run",
        "--data",
        "lender.csv",
        "--schema",
        "lender.toml",
        "--workdir",
        "w",
        "--trials",
        "3",
        cwd=lender,
    )
    assert done.returncode == 0, done.stderr
    assert "skipped: rules" in done.stdout
    bundle = load_bundle(lender / "w" / "models")
    assert bundle.schema.name == "lender" and bundle.meta["target"] == "risk"
    results = json.loads(next((lender / "w" / "results").glob("*.json")).read_text())
    assert len(results) == 400 and results[-1]["id"] == "L1399"
    refused = preauth("label", "lender.csv", "--schema", "lender.toml", "-o", "l.csv", cwd=lender)
    assert refused.returncode == 2
    assert refused.stderr == (
        "preauth: error: the rules rubric knows only the German Credit schema, not 'lender': label with an "
        "LLM provider (--llm openai:MODEL --base-url URL, or --llm bedrock:MODEL), or train on the real "
        "outcomes (preauth train FILE --schema FILE --target risk)\n"
    )


def test_an_old_bundle_without_a_schema_loads_with_the_german_one(
    small_models_dir: Path, tmp_path: Path
) -> None:
    old = tmp_path / "models"
    shutil.copytree(small_models_dir, old)
    version = load_bundle(old).path.name
    (old / version / SCHEMA_FILE).unlink()
    meta_path = old / version / "bundle.json"
    meta = json.loads(meta_path.read_text())
    for key in ("schema_fingerprint", "schema_name"):
        meta.pop(key)
    meta_path.write_text(json.dumps(meta))
    assert load_bundle(old).schema is GERMAN
    # A bundle whose schema file was edited after training is refused with the reason.
    (old / version / SCHEMA_FILE).write_text(GERMAN.to_toml().replace("maximum = 100", "maximum = 120"))
    meta["schema_fingerprint"] = GERMAN.fingerprint
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelBundleError, match="schema.toml was changed after training"):
        load_bundle(old)


@pytest.fixture
def lender_service(lender_models: Path, tmp_path: Path) -> Iterator[str]:
    """The lender's model served by a real uvicorn server on a free port."""
    import socket
    import threading
    import time

    import uvicorn

    from preauth.service.app import create_app
    from preauth.settings import Settings

    settings = Settings(
        models_dir=lender_models, database_url=f"sqlite:///{tmp_path / 'd.db'}", sagemaker_model_dir=None
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(15)


def test_the_service_speaks_the_served_models_schema(lender: Path, lender_service: str) -> None:
    schema = load_schema(lender / "lender.toml")
    example = schema.example()
    with httpx.Client(base_url=lender_service, timeout=30) as client:
        document = client.get("/openapi.json").json()
        body = document["paths"]["/v1/decisions"]["post"]["requestBody"]["content"]["application/json"]
        assert list(body["schema"]["properties"]) == list(schema.field_names)
        assert body["examples"]["typical"]["value"] == example
        assert body["schema"]["properties"]["Income"]["type"] == ["integer", "null"]

        decided = client.post("/v1/decisions", json={**example, "Savings": None, "Ref": "L9"})
        assert decided.status_code == 201, decided.text
        answer = decided.json()
        assert answer["input"]["Savings"] is None and {r["feature"] for r in answer["reasons"]} <= set(
            schema.field_names
        )

        refused = client.post("/v1/decisions", json={**example, "Home": "castle", "Age": 5})
        assert refused.status_code == 422
        fields = {e["field"]: e["message"] for e in refused.json()["error"]["errors"]}
        assert fields["Home"].startswith("<request>, row 1, column 'Home': 'castle' is not one of: ")
        assert fields["Age"].endswith(
            f"5 is outside {schema.field('Age').minimum:g}–{schema.field('Age').maximum:g}"
        )

        # SageMaker's contract: CSV without a header is in the schema's column order.
        row = ",".join(str(example[name]) for name in schema.field_names)
        invoked = client.post("/invocations", content=row + "\n", headers={"content-type": "text/csv"})
        assert invoked.status_code == 200, invoked.text
        assert invoked.json()[0]["input_data"]["Job"] == example["Job"]

        page = client.get("/").text
        assert 'id="field-savings"' in page and "no account / not given" in page
        assert 'id="field-records"' in page and 'id="field-housing"' not in page


def test_files_and_requests_check_and_encode_a_lender_application_alike(lender: Path) -> None:
    import numpy as np

    from preauth.applications import applications_from_records
    from preauth.features import encode, feature_types
    from preauth.service.intake import check_records, encode_rows

    schema = load_schema(lender / "lender.toml")
    example = schema.example()
    records = [
        example,
        {**example, "Savings": None, "Income": ""},
        {**example, "Savings": "HIGH", "Job": "partime"},
        {**example, "Home": "castle"},
        {**example, "Income": "1_000"},
        {**example, "Savings": "none", "Time": 99.5},
    ]
    columns = list(schema.field_names)
    checked = check_records(records, schema=schema)
    slow = applications_from_records(records, schema=schema)
    assert [(p.row, p.column, p.reason) for p in checked.problems] == [
        (r.row, r.column, r.reason) for r in slow.rejects
    ]
    matrix = encode_rows(checked.accepted, columns, schema)
    np.testing.assert_array_equal(matrix, encode(slow.frame, columns, schema))
    # Savings is ordered: one numeric feature whose codes keep the order; "no account" is missing.
    savings = columns.index("Savings")
    assert feature_types(columns, schema)[savings] == "q"
    assert np.isnan(matrix[1, savings]) and matrix[2, savings] == 3.0 and matrix[0, savings] == 1.0
    assert np.isnan(matrix[1, columns.index("Income")])


def test_the_pages_decisions_list_shows_the_lenders_own_fields(
    lender: Path, lender_service: str, browser: Any
) -> None:
    """The decisions list takes its application columns from the served schema (its last three
    fields that are not protected), whatever spelling the caller used, in a real browser."""
    schema = load_schema(lender / "lender.toml")
    listed = [f.name for f in schema.fields if f.name not in schema.protected][-3:]
    assert listed == ["Amount", "Price", "Savings"]
    given = {**schema.example(), "Savings": "high"}
    given["amount"] = given.pop("Amount")  # an accepted spelling, stored as the caller sent it
    given["ＰＲＩＣＥ"] = given.pop("Price")  # full-width: the page reads it as the server does
    with httpx.Client(base_url=lender_service, timeout=30) as client:
        decided = client.post("/v1/decisions", json=given)
    assert decided.status_code == 201, decided.text
    decision_id = decided.json()["id"]

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        tab.goto(lender_service + "/")
        tab.click("[role=tab][data-tab=decisions]")
        row = tab.locator(f"#decisions-table tbody tr[data-id='{decision_id}']")
        row.wait_for()
        headers = tab.locator("#decisions-table thead th").all_inner_texts()
        cells = row.locator("td").all_inner_texts()
    finally:
        context.close()
    assert headers[4:7] == listed and "Credit amount" not in headers and "Purpose" not in headers
    assert cells[4:7] == [str(given["amount"]), str(given["ＰＲＩＣＥ"]), "high"]
    assert len(cells) == len(headers)


def test_the_german_decisions_list_keeps_its_loan_columns() -> None:
    from preauth.service.page import listed_fields

    assert [(f["name"], f["spellings"]) for f in listed_fields(GERMAN)] == [
        ("Credit amount", "credit_amount amount"),
        ("Duration", "duration"),
        ("Purpose", "purpose"),
    ]
