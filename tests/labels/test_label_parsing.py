"""Reading answers as models really write them, and rendering the versioned prompts."""

from __future__ import annotations

import pytest

from preauth.errors import ConfigurationError
from preauth.prompts import clean_description, parse_verdict, render


@pytest.mark.parametrize(
    ("answer", "label", "rationale"),
    [
        ('{"label": "good risk", "rationale": "stable"}', "good risk", "stable"),
        ('```json\n{"label": "bad risk", "rationale": "long term"}\n```', "bad risk", "long term"),
        ('Sure! Here is my answer:\n{"Label": "Bad Risk", "reason": "x"}\nThanks.', "bad risk", "x"),
        ('{"classification": "good_risk"}', "good risk", ""),
        ('{"target": "bad"}', "bad risk", ""),
        ("Bad risk. The term is long.", "bad risk", "The term is long"),
        ("**Good Risk**", "good risk", "**"),
        ('[{"label": "good risk", "rationale": "r"}]', "good risk", "r"),
    ],
)
def test_readable_answers(answer: str, label: str, rationale: str) -> None:
    verdict = parse_verdict(answer)
    assert verdict is not None and verdict.label == label
    assert verdict.rationale.startswith(rationale.strip("*")) or rationale == "**"


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "I cannot decide.",
        "It could be good risk or bad risk.",
        '{"label": "medium risk"}',
        '{"label": ',
        '```json\n{"rationale": "no label"}\n```',
    ],
)
def test_unreadable_answers(answer: str) -> None:
    assert parse_verdict(answer) is None


def test_descriptions_are_tidied() -> None:
    assert clean_description('"""\n\n   The customer is 67.  He owns.\n"') == "The customer is 67. He owns."
    assert (
        clean_description("Here is a short description of the applicant:\nA 30-year-old.") == "A 30-year-old."
    )


def test_prompts_render_every_field_but_sex(german) -> None:
    application = german.frame.iloc[0].to_dict()
    describe = render("describe", application)
    assert [m.role for m in describe] == ["system", "user"]
    text = describe[1].content
    for fact in (
        "67 years",
        "skilled",
        "own",
        "Savings account balance: unknown",
        "little",
        "1,169",
        "6 months",
        "radio/TV",
    ):
        assert fact in text
    assert "male" not in text.lower().replace("female", "")
    classify = render("classify", application, description="DESC")
    assert "Description: DESC" in classify[1].content and '"label"' in classify[1].content
    assert "$" not in describe[1].content + classify[1].content


def test_unknown_prompt_version(german) -> None:
    with pytest.raises(ConfigurationError, match="no prompt template 'describe-v9.txt'"):
        render("describe", german.frame.iloc[0].to_dict(), version="v9")
