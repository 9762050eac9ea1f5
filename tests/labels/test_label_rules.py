"""The offline rules provider: deterministic, documented, sex-blind, a plausible minority bad."""

from __future__ import annotations

import re

import pytest

from preauth.applications import Applications
from preauth.labels import label_applications
from preauth.providers import get_provider, rules
from preauth.providers.rules import THRESHOLD, decide, describe, points


def test_same_input_same_labels(german: Applications) -> None:
    once = label_applications(german, "rules", progress=False)
    twice = label_applications(german, get_provider("rules"), progress=False)
    assert once.equals(twice)
    assert once.attrs["label_run"]["calls"] == 2 * len(german)


def test_plausible_minority_is_bad_risk(german: Applications) -> None:
    frame = label_applications(german, "rules", progress=False)
    share = (frame["target"] == "bad risk").mean()
    assert 0.2 <= share <= 0.4
    assert (frame["target"] != "").all()
    assert set(frame["provider"]) == {"rules"} and set(frame["model"]) == {"rubric-v1"}
    assert set(frame["prompt_version"]) == {"rubric-v1"}


def test_rationale_adds_up_to_the_label(german: Applications) -> None:
    for application in german.frame.head(200).to_dict("records"):
        label, rationale = decide(application)
        found = [int(v) for v in re.findall(r"\(([+-]\d+)\)", rationale)]
        assert sum(found) == sum(v for _, v in points(application))
        assert (label == "bad risk") == (sum(found) >= THRESHOLD)


def test_sex_is_never_used(german: Applications) -> None:
    for application in german.frame.head(100).to_dict("records"):
        other = dict(application, Sex="female" if application["Sex"] == "male" else "male")
        assert decide(application) == decide(other)
        assert describe(application) == describe(other)


@pytest.mark.parametrize(
    ("change", "direction"),
    [
        ({"Checking account": "little"}, 1),
        ({"Duration": 60}, 1),
        ({"Credit amount": 15000}, 1),
        ({"Age": 21}, 1),
        ({"Housing": "rent"}, 1),
        ({"Purpose": "business"}, 1),
        ({"Saving accounts": "rich"}, -1),
    ],
)
def test_each_rubric_point_moves_the_score_the_documented_way(change: dict, direction: int) -> None:
    base = {
        "Age": 40,
        "Sex": "male",
        "Job": 2,
        "Housing": "own",
        "Saving accounts": "moderate",
        "Checking account": "rich",
        "Credit amount": 2000,
        "Duration": 12,
        "Purpose": "car",
    }
    assert (rules.score({**base, **change}) - rules.score(base)) * direction > 0


def test_rubric_is_documented() -> None:
    doc = rules.__doc__ or ""
    assert "not fitted" in doc or "never been fitted" in doc
    for topic in ("Checking account", "Savings", "Duration", "Credit amount", "Age", "Housing", "Purpose"):
        assert topic in doc
    assert f"**{THRESHOLD} or more**" in doc
