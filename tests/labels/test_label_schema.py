"""Labels on any schema: an LLM describes a lender's applicant from the schema's own words; the
rules rubric, written for German Credit, refuses any other schema in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai_server import ChatServer, default_reply

from preauth.applications import GERMAN, applications_from_records, parse_schema
from preauth.errors import ConfigurationError
from preauth.labels import label_applications, measure_labels, write_labels
from preauth.prompts import render
from preauth.providers import get_provider

LENDER = parse_schema(
    """
name = "lender"
protected = ["Marital"]
[target]
column = "Status"
bad = ["2"]
good = ["1"]
[[fields]]
name = "Amount"
kind = "whole number"
positive = true
unit = "EUR"
description = "Amount asked for"
[[fields]]
name = "Records"
kind = "category"
categories = ["no", "yes"]
labels = {yes = "has arrears on record", no = "no arrears on record"}
[[fields]]
name = "Savings"
kind = "ordered category"
categories = ["low", "medium", "high"]
missing = "no account"
description = "Savings balance"
[[fields]]
name = "Marital"
kind = "category"
categories = ["single", "married"]
""",
    "lender.toml",
)
ROWS = [
    {"Amount": 1200, "Records": "yes", "Savings": None, "Marital": "single", "Status": "2"},
    {"Amount": 800, "Records": "no", "Savings": "high", "Marital": "married", "Status": "1"},
]


def test_a_lender_applicant_is_described_from_the_schema_protected_attributes_left_out() -> None:
    apps = applications_from_records(ROWS, schema=LENDER)
    messages = render("describe", apps.frame.to_dict("records")[0], schema=LENDER)
    user = messages[-1].content
    assert user.endswith(
        "Amount: 1,200 EUR (Amount asked for)\n"
        "Records: has arrears on record\n"
        "Savings: no account (Savings balance)"
    )
    assert "Marital" not in user and "single" not in user
    # German Credit keeps its own wording, whether or not the schema is passed.
    german = {"Age": 30, "Job": 2, "Housing": "own", "Credit amount": 1000, "Duration": 12, "Purpose": "car"}
    assert render("describe", german, schema=GERMAN) == render("describe", german)
    assert "Savings account balance: unknown" in render("describe", german)[-1].content


def test_an_llm_labels_a_lender_file_and_the_rules_rubric_refuses_it(
    chat_server: ChatServer, tmp_path: Path
) -> None:
    seen: list[str] = []

    def reply(task: str, messages: list[dict[str, str]]) -> str:
        seen.append(messages[-1]["content"])
        if task == "describe":
            return "Asks for 1,200 EUR with arrears on record and no savings account."
        return default_reply(task, messages)

    chat_server.reply = reply
    apps = applications_from_records(ROWS, schema=LENDER)
    provider = get_provider("openai:test-model", base_url=chat_server.url)
    frame = label_applications(apps, provider, progress=False, concurrency=1)
    assert list(frame.columns[:5]) == ["Amount", "Records", "Savings", "Marital", "Status"]
    assert list(frame["Status"]) == ["bad", "good"]
    assert set(frame["target"]) <= {"good risk", "bad risk"} and frame["target"].ne("").all()
    assert any("Records: has arrears on record" in text for text in seen)
    # The labels are measured against the schema's own outcome column.
    measured = measure_labels(write_labels(frame, tmp_path / "labels.csv"), schema=LENDER)
    assert measured.measured_against == "Status in labels.csv" and measured.n == 2
    with pytest.raises(
        ConfigurationError, match="^the rules rubric knows only the German Credit schema, not 'lender'"
    ):
        label_applications(apps, "rules", progress=False)
