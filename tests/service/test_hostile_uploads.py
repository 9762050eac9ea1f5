"""Uploads to the page's batch route that are hostile rather than merely wrong: a 4xx, never a 500."""

from __future__ import annotations

import json

from service_helpers import application
from test_safety import assert_clean

from preauth import applications
from preauth.service.intake import check_records


def test_a_deeply_nested_json_upload_is_422_naming_the_file(serve):
    server = serve()
    deep = b"[" * 100_000 + b"]" * 100_000
    with server.client() as client:
        answer = client.post("/ui/batch", files={"file": ("deep.json", deep, "application/json")})
    assert answer.status_code == 422, answer.text
    assert_clean(answer)
    assert answer.json()["error"]["message"] == (
        "deep.json: JSON nested too deeply; an application is one object of plain values"
    )


NON_ASCII_DIGITS = ["\u0663\u0665", "\uff13\uff15", "\u0969\u096b", "3\u0665"]
"""35 in Arabic-Indic, full-width and Devanagari digits, and mixed: refused by the CLI, so by the API."""


def test_non_ascii_digits_are_refused_by_the_service_as_by_a_file():
    records = [application(Age=digits) for digits in NON_ASCII_DIGITS]
    checked = check_records(records)
    slow = applications.applications_from_records(records)
    assert [(p.row, p.column, p.reason) for p in checked.problems] == [
        (r.row, r.column, r.reason) for r in slow.rejects
    ]
    assert [p.reason for p in checked.problems] == [f"'{d}' is not a whole number" for d in NON_ASCII_DIGITS]


def test_a_request_with_arabic_indic_digits_is_422_naming_the_field(serve):
    server = serve()
    with server.client() as client:
        answer = client.post(
            "/v1/decisions", json=application(**{"Credit amount": "\u0663\u0665\u0660\u0660"})
        )
    assert answer.status_code == 422, answer.text
    assert_clean(answer)
    (error,) = answer.json()["error"]["errors"]
    assert error["field"] == "Credit amount"
    assert "'\u0663\u0665\u0660\u0660' is not a number" in answer.json()["error"]["message"]


def test_a_bad_json_line_in_an_upload_is_one_rejected_row_and_the_others_are_scored(serve):
    server = serve()
    lines = [json.dumps(application(Age=age)) for age in (30, 31, 32)]
    lines[1] = lines[1][:-1]
    with server.client() as client:
        answer = client.post("/ui/batch", files={"file": ("apps.jsonl", "\n".join(lines).encode())})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["rows"], body["scored"], body["rejected"]) == (3, 2, 1)
    (reject,) = body["rejects"]
    assert reject["message"] == "apps.jsonl, row 2: invalid JSON on line 2 (Expecting ',' delimiter)"
    bad_csv = b"Age,Sex,Job,Housing,Credit amount,Duration,Purpose\n30,male,2,own,1000,12,car\n1,2\n"
    with server.client() as client:
        answer = client.post("/ui/batch", files={"file": ("apps.csv", bad_csv)})
    assert answer.json()["rejects"][0]["message"] == "apps.csv, row 2: has 2 fields, the header has 7"


def test_an_upload_never_echoes_a_huge_value_or_returns_a_live_formula(serve):
    """The results file goes back to a spreadsheet: a formula-like cell comes back as text; a
    megabyte value is quoted short in the rejects, as in every other answer."""
    import csv
    import io

    server = serve()
    header = "Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose,Note"
    formula = "=cmd|' /C calc'!A0"
    huge = "castle" * 200_000
    body = f"{header}\n30,male,2,own,little,little,1000,12,car,{formula}\n31,male,2,{huge},little,little,1000,12,car,x\n"
    with server.client() as client:
        answer = client.post("/ui/batch", files={"file": ("apps.csv", body.encode())})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    (reject,) = result["rejects"]
    assert reject["field"] == "Housing" and len(reject["value"]) <= 101
    assert len(str(result["rejects"])) < 2_000  # the results file itself keeps the row as given
    csv.field_size_limit(10_000_000)
    rows = list(csv.reader(io.StringIO(result["results_csv"])))
    note = rows[0].index("Note")
    assert rows[1][note] == "'" + formula
