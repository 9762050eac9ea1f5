"""A blank optional field (Sex, which the model does not use) is missing, as if it were absent:
accepted in files, single requests and batch requests alike; an object is judged the same alone
and among others."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_helpers import application

from preauth.applications import read_applications

pytestmark = pytest.mark.booster_path

HEADER = "Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose"


@pytest.mark.parametrize("blank", ["", "NA", "null"])
def test_a_file_with_a_blank_sex_is_read_like_one_without_the_column(tmp_path: Path, blank: str) -> None:
    with_blank = tmp_path / "blank.csv"
    with_blank.write_text(
        f"{HEADER}\n30,{blank},2,own,little,moderate,1000,12,car\n31,female,2,own,,,900,6,car\n"
    )
    without = tmp_path / "without.csv"
    without.write_text(HEADER.replace("Sex,", "") + "\n30,2,own,little,moderate,1000,12,car\n")
    apps = read_applications(with_blank)
    assert not apps.rejects and len(apps) == 2
    assert apps.frame["Sex"].isna().tolist() == [True, False]
    assert apps.given["Sex"].isna().tolist() == [True, False]
    assert not read_applications(without).rejects


def test_a_blank_required_field_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "apps.csv"
    path.write_text(f"{HEADER}\n,male,2,own,little,moderate,1000,12,car\n")
    (reject,) = read_applications(path).rejects
    assert (reject.row, reject.column, reject.reason) == (1, "Age", "missing value")


def test_requests_accept_a_blank_sex_alone_and_in_a_batch(serve):
    server = serve()
    no_sex = {k: v for k, v in application().items() if k != "Sex"}
    objects = [application(), application(Sex=""), application(Sex=None), no_sex, application(Sex="NA")]
    with server.client() as client:
        alone = [client.post("/v1/decisions", json=o) for o in objects]
        assert [a.status_code for a in alone] == [201] * 5, [a.text for a in alone]
        assert [a.json()["input"].get("Sex") for a in alone] == ["male", None, None, None, None]
        together = client.post("/v1/decisions/batch", json=objects).json()
        assert together["rejects"] == [] and len(together["decisions"]) == 5
        # the same probability alone and together: Sex is not a model input
        assert [d["probability"] for d in together["decisions"]] == [a.json()["probability"] for a in alone]
        sagemaker = client.post("/invocations", json=objects)
        assert sagemaker.status_code == 200 and all("error" not in r for r in sagemaker.json())
        csv = client.post(
            "/invocations",
            content="35,,2,own,little,little,2500,12,car\n",
            headers={"content-type": "text/csv"},
        )
        assert csv.status_code == 200 and csv.json()[0]["input_data"]["Sex"] is None
        refused = client.post("/v1/decisions", json=application(Age=""))
        assert refused.status_code == 422 and refused.json()["error"]["errors"][0]["field"] == "Age"


def test_an_object_is_judged_the_same_alone_and_beside_other_spellings(serve):
    server = serve()
    snake = {f"{k.lower().replace(' ', '_')}": v for k, v in application().items()}
    doubled = {**application(), "age": 40}
    with server.client() as client:
        batch = client.post("/v1/decisions/batch", json=[application(), snake, doubled]).json()
        assert len(batch["decisions"]) == 2
        assert [(r["row"], r["field"]) for r in batch["rejects"]] == [(3, "Age")]
        assert "duplicate fields 'Age' and 'age'" in batch["rejects"][0]["message"]
        alone = client.post("/v1/decisions", json=doubled)
        assert alone.status_code == 422 and "duplicate fields" in alone.json()["error"]["message"]


def test_an_object_without_a_required_field_is_refused_alone_and_in_a_batch(serve):
    """Left out, a required field is a missing value: alone the request is 422 naming it; in a
    batch that object alone is rejected for it (it used to be scored with every field empty)."""
    server = serve()
    no_age = {k: v for k, v in application().items() if k != "Age"}
    with server.client() as client:
        alone = client.post("/v1/decisions", json=no_age)
        assert alone.status_code == 422 and "Age" in alone.text
        batch = client.post("/v1/decisions/batch", json=[application(), no_age, {}]).json()
        assert len(batch["decisions"]) == 1
        first = batch["rejects"][0]
        assert (first["row"], first["field"]) == (2, "Age") and first["message"].endswith(
            "'Age': missing value"
        )
        assert [r["row"] for r in batch["rejects"]] == [2, 3]


def test_an_element_that_is_not_an_object_is_refused_alone(serve):
    """A null or a number among a batch's objects is rejected with its place; the others decided."""
    server = serve()
    with server.client() as client:
        batch = client.post("/v1/decisions/batch", json=[application(), None, 5, application(Age=44)])
        assert batch.status_code == 200, batch.text
        assert [d["input"]["Age"] for d in batch.json()["decisions"]] == [35, 44]
        assert [(r["row"], r["reason"]) for r in batch.json()["rejects"]] == [
            (2, "expected an application object"),
            (3, "expected an application object"),
        ]
        invoked = client.post("/invocations", json=[application(), None])
        assert invoked.status_code == 200
        assert "probability_fraud" in invoked.json()[0] and invoked.json()[1]["error"]["row"] == 2
        assert client.post("/v1/decisions/batch", json=[None, 5]).status_code == 422
