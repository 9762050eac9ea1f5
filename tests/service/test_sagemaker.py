"""The SageMaker contract over real HTTP: /ping, /invocations in CSV and JSON, and boto3."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from service_helpers import application

from preauth import applications, bundles, features

pytestmark = pytest.mark.booster_path

RESULT_KEYS = ["input_data", "probability_fraud", "is_fraud", "target", "confidence", "timestamp"]
ORIGINAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "original"


def batch_probabilities(models_dir: Path, records: list[dict]) -> np.ndarray:
    """What batch scoring (the vectorised validate + encode path) gives for the same applications."""
    bundle = bundles.load_bundle(models_dir)
    apps = applications.applications_from_records(records)
    return bundle.predict_proba(features.encode(apps.frame, bundle.features))


def test_ping_answers_once_the_model_is_loaded(serve):
    server = serve()
    with server.client() as client:
        answer = client.get("/ping")
    assert answer.status_code == 200
    assert answer.json()["model_version"] == "v1"


def test_json_invocations_answer_original_result_objects(serve, models_dir):
    server = serve()
    second = application(Age=22, Job=1, Housing="rent", **{"Credit amount": 15000, "Duration": 48})
    second.update({"Saving accounts": None, "Checking account": None, "Purpose": "business"})
    with server.client() as client:
        one = client.post("/invocations", json=application())
        many = client.post("/invocations", json=[application(), second])
        instances = client.post("/invocations", json={"instances": [application(), second]})
    assert one.status_code == 200 and list(one.json()) == RESULT_KEYS
    assert many.status_code == 200 and instances.status_code == 200
    assert [r["probability_fraud"] for r in many.json()] == [r["probability_fraud"] for r in instances.json()]
    expected = batch_probabilities(models_dir, [application(), second])
    got = np.array([r["probability_fraud"] for r in many.json()])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    first = many.json()[1]
    assert first["input_data"]["Saving accounts"] is None
    assert first["is_fraud"] == (first["probability_fraud"] >= 0.5)
    assert first["target"] == ("bad risk" if first["is_fraud"] else "good risk")
    assert first["confidence"] == pytest.approx(
        max(first["probability_fraud"], 1 - first["probability_fraud"])
    )


def test_csv_invocations_with_and_without_header(serve, models_dir):
    server = serve()
    header = ",".join(applications.FIELD_NAMES)
    rows = "35,male,2,own,little,little,2500,12,car\n22,male,1,rent,,,15000,48,business\n"
    with server.client() as client:
        with_header = client.post(
            "/invocations", content=f"{header}\n{rows}", headers={"Content-Type": "text/csv"}
        )
        without = client.post(
            "/invocations", content=rows, headers={"Content-Type": "text/csv; charset=utf-8"}
        )
    assert with_header.status_code == 200 and without.status_code == 200
    assert [r["probability_fraud"] for r in with_header.json()] == [
        r["probability_fraud"] for r in without.json()
    ]
    assert without.json()[1]["input_data"]["Checking account"] is None
    assert len(without.json()) == 2 and list(without.json()[0]) == RESULT_KEYS


def test_the_original_sample_file_scores_as_sent(serve):
    sample = ORIGINAL / "sample_transactions.csv"
    if not sample.exists():
        pytest.skip(f"original pipeline files not found at {ORIGINAL}")
    server = serve()
    with server.client() as client:
        answer = client.post(
            "/invocations", content=sample.read_bytes(), headers={"Content-Type": "text/csv"}
        )
    assert answer.status_code == 200
    results = answer.json()
    assert len(results) == len(sample.read_text().strip().splitlines()) - 1
    assert results[0]["input_data"]["Savings account"] == "little"  # the user's own column name


def test_one_bad_row_costs_no_other_row_its_result(serve):
    server = serve()
    with server.client() as client:
        answer = client.post(
            "/invocations", json=[application(), application(Age=7), application(Purpose="boat")]
        )
    assert answer.status_code == 200
    good, young, boat = answer.json()
    assert "probability_fraud" in good
    assert young["error"]["field"] == "Age" and young["error"]["reason"] == "7 is outside 18\u2013100"
    assert boat["error"]["field"] == "Purpose" and "'boat' is not one of" in boat["error"]["reason"]


def test_a_row_that_cannot_be_read_costs_no_other_row_its_result(serve):
    """A CSV row with the wrong number of fields and a JSON Lines line that is not JSON are
    refused alone (they used to fail the whole request with 422); a body of nothing else is 422."""
    server = serve()
    header = ",".join(applications.FIELD_NAMES)
    good = "35,male,2,own,little,little,2500,12,car"
    good_line = json.dumps(application())
    with server.client() as client:
        csv = client.post(
            "/invocations",
            content=f"{header}\n{good}\n35,male\n{good}\n",
            headers={"Content-Type": "text/csv"},
        )
        bare = client.post("/invocations", content=f"{good}\n1,2\n", headers={"Content-Type": "text/csv"})
        lines = client.post(
            "/invocations",
            content=f'{good_line}\n\n{{"Age":\n{good_line}\n',
            headers={"Content-Type": "application/jsonlines"},
        )
        broken = client.post("/invocations", content="35,male\n", headers={"Content-Type": "text/csv"})
    assert csv.status_code == 200, csv.text
    assert ["error" in r for r in csv.json()] == [False, True, False]
    assert csv.json()[1]["error"]["reason"] == "expected 9 fields, got 2"
    assert (
        bare.status_code == 200
        and "a CSV without a header needs 9 fields" in bare.json()[1]["error"]["reason"]
    )
    assert lines.status_code == 200, lines.text
    assert ["error" in r for r in lines.json()] == [False, True, False]
    assert (
        lines.json()[1]["error"]["reason"].startswith("invalid JSON")
        and "on line 3" in lines.json()[1]["error"]["reason"]
    )
    assert broken.status_code == 422 and "a CSV without a header needs 9 fields" in broken.text


def test_boto3_invoke_endpoint_works_by_pointing_endpoint_url_at_the_server(serve, models_dir):
    import boto3

    server = serve()
    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=server.url,
        region_name="eu-central-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    csv_answer = runtime.invoke_endpoint(
        EndpointName="credit-risk-endpoint",
        ContentType="text/csv",
        Body="35,male,2,own,little,little,2500,12,car",
    )
    json_answer = runtime.invoke_endpoint(
        EndpointName="credit-risk-endpoint",
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps(application()),
    )
    (from_csv,) = json.loads(csv_answer["Body"].read())
    from_json = json.loads(json_answer["Body"].read())
    assert csv_answer["ContentType"].startswith("application/json")
    expected = batch_probabilities(models_dir, [application(**{"Saving accounts": "little"})])[0]
    assert from_csv["probability_fraud"] == pytest.approx(expected, abs=1e-9)
    assert list(from_json) == RESULT_KEYS


def test_boto3_reads_the_reason_of_a_refused_invocation(serve):
    import boto3

    server = serve()
    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=server.url,
        region_name="eu-central-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    for content_type, body, status, reason in (
        ("text/csv", "150,male,2,own,little,little,2500,12,car", 422, "row 1, column 'Age': 150 is outside"),
        ("text/csv", "1,2,3", 422, "needs 9 fields"),
        ("application/json", "{not json", 422, "invalid JSON"),
        ("application/xml", "<app/>", 415, "send text/csv or application/json"),
    ):
        with pytest.raises(runtime.exceptions.ModelError) as refused:
            runtime.invoke_endpoint(EndpointName="preauth", ContentType=content_type, Body=body)
        answer = refused.value.response
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == status
        assert reason in answer["Error"]["Message"], answer


def test_invoke_endpoint_says_refer_in_custom_attributes_and_explains_when_asked(serve, referring_models):
    import boto3

    server = serve(models_dir=referring_models)
    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=server.url,
        region_name="eu-central-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    far = application(Age=18, **{"Credit amount": 1_000_000})
    body = json.dumps([application(), far])
    plain = runtime.invoke_endpoint(EndpointName="p", ContentType="application/json", Body=body)
    normal, referred = json.loads(plain["Body"].read())
    assert list(normal) == RESULT_KEYS and list(referred) == RESULT_KEYS  # the original objects, unchanged
    counts = dict(pair.split("=") for pair in plain["CustomAttributes"].split(","))
    assert counts["refer"] == "1" and int(counts["approve"]) + int(counts["decline"]) == 1

    asked = runtime.invoke_endpoint(
        EndpointName="p", ContentType="application/json", Body=body, CustomAttributes="explain"
    )
    normal, referred = json.loads(asked["Body"].read())
    assert list(referred) == [*RESULT_KEYS, "decision", "reasons"]
    assert referred["decision"] == "refer" and referred["reasons"][0]["feature"] == "Credit amount"
    assert "1,000,000" in referred["reasons"][0]["text"]
    assert normal["decision"] == ("decline" if normal["is_fraud"] else "approve")
    assert all(r["direction"] != "refer" for r in normal["reasons"])
