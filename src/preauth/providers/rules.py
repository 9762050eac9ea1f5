"""The offline label provider: a written underwriting rubric, deterministic and free.

``rules`` stands in for an LLM when there is none (the default, tests, CI, a laptop on a train). It
writes a plain description from the application's fields and decides the label with a points
rubric drawn from ordinary retail-credit practice, not from the data: the rubric was written
before looking at any outcome and has never been fitted to the ``Risk`` column. Its agreement with
``Risk`` is therefore an honest, modest number, like an LLM's.

Rubric ``rubric-v1``: risk points, bad risk when the total is **5 or more**.

====================  ==============================================================  ==========
What                  Why an underwriter cares                                        Points
====================  ==============================================================  ==========
Checking account      little: lives near the overdraft line                           +2
                      moderate                                                        +1
                      unknown: no account history to look at                          +1
                      rich                                                            0
Savings               little: no cushion against a shock                              +1
                      quite rich / rich: a cushion                                    −1
                      moderate / unknown                                              0
Duration              more than 36 months: long exposure, more can go wrong           +3
                      25–36 months                                                    +2
                      13–24 months                                                    +1
                      12 months or less                                               0
Credit amount         more than 10,000 DM                                             +2
                      more than 5,000 DM                                              +1
Monthly burden        amount ÷ duration above 300 DM a month                          +1
Age                   under 25: short credit history                                  +1
Housing               rent or lives free: no property, less stability                 +1
Purpose               business, education, vacation/others: income uncertain or       +1
                      the loan buys nothing that keeps its value
Job                   0, unskilled and non-resident: unstable income                  +1
====================  ==============================================================  ==========

Sex is never used. The threshold was set so that the rubric refuses a plausible minority: on the bundled German
Credit applications it calls 29% bad risk (only the share of refusals was looked at, never which
applicants defaulted).

The rubric reads the structured application, so ``classify`` gives the same verdict whether the
description came from this provider or from elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..applications import GERMAN, Schema
from ..prompts import BAD, GOOD, JOB_TEXT
from . import Completion, Params, Prompt

VERSION = "rubric-v1"
THRESHOLD = 5


def points(application: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The rubric's findings for one application: (reason, points), only the non-zero ones."""
    found: list[tuple[str, int]] = []
    checking = str(application.get("Checking account") or "unknown")
    found.append(
        (f"checking balance {checking}", {"little": 2, "moderate": 1, "unknown": 1}.get(checking, 0))
    )
    savings = str(application.get("Saving accounts") or "unknown")
    found.append((f"savings {savings}", {"little": 1, "quite rich": -1, "rich": -1}.get(savings, 0)))
    duration = float(application["Duration"])
    duration_points = 3 if duration > 36 else 2 if duration > 24 else 1 if duration > 12 else 0
    found.append((f"{duration:.0f}-month term", duration_points))
    amount = float(application["Credit amount"])
    found.append((f"{amount:,.0f} DM asked", 2 if amount > 10_000 else 1 if amount > 5_000 else 0))
    monthly = amount / duration
    found.append((f"{monthly:,.0f} DM a month", 1 if monthly > 300 else 0))
    age = float(application["Age"])
    found.append((f"age {age:.0f}", 1 if age < 25 else 0))
    housing = str(application["Housing"])
    found.append((f"housing {housing}", 1 if housing in {"rent", "free"} else 0))
    purpose = str(application["Purpose"])
    found.append((f"purpose {purpose}", 1 if purpose in {"business", "education", "vacation/others"} else 0))
    job = application.get("Job")
    found.append(("unskilled non-resident", 1 if job is not None and int(job) == 0 else 0))
    return [(reason, value) for reason, value in found if value != 0]


def score(application: Mapping[str, Any]) -> int:
    return sum(value for _, value in points(application))


def decide(application: Mapping[str, Any]) -> tuple[str, str]:
    """(label, rationale) under the rubric."""
    found = points(application)
    total = sum(value for _, value in found)
    label = BAD if total >= THRESHOLD else GOOD
    detail = ", ".join(f"{reason} ({value:+d})" for reason, value in found) or "no risk points"
    rationale = f"{total} risk points (bad risk at {THRESHOLD} or more): {detail}"
    return label, rationale


def describe(application: Mapping[str, Any]) -> str:
    """A plain description in the style an LLM would write, from the fields alone."""
    age = float(application["Age"])
    job = application.get("Job")
    job_text = JOB_TEXT.get(int(job), "unknown") if job is not None else "unknown"
    housing = {"own": "owns their home", "rent": "rents their home", "free": "lives rent-free"}.get(
        str(application["Housing"]), f"housing: {application['Housing']}"
    )
    checking = str(application.get("Checking account") or "unknown")
    savings = str(application.get("Saving accounts") or "unknown")
    amount = float(application["Credit amount"])
    duration = float(application["Duration"])

    def balance(kind: str, value: str) -> str:
        return f"the {kind} balance is unknown" if value == "unknown" else f"a {value} {kind} balance"

    return (
        f"The applicant is {age:.0f} years old, {job_text}, and {housing}. "
        f"They have {balance('checking', checking)} and {balance('savings', savings)}. "
        f"They ask for {amount:,.0f} DM over {duration:.0f} months for {application['Purpose']}."
    )


class RulesProvider:
    """The rubric as a provider: no network, no cost, the same answer every time.

    The rubric is written for German Credit's columns and nothing else: any other schema is refused
    (:meth:`refusal`) rather than read wrongly.
    """

    name = "rules"
    remote = False
    prompt_version: str | None = VERSION

    def refusal(self, schema: Schema) -> str | None:
        """Why this provider cannot label applications of ``schema``, or None when it can."""
        if schema.same_as(GERMAN):
            return None
        return (
            f"the rules rubric knows only the German Credit schema, not '{schema.name}': label with an "
            "LLM provider (--llm openai:MODEL --base-url URL, or --llm bedrock:MODEL), or train on the "
            "real outcomes (preauth train FILE --schema FILE --target risk)"
        )

    def __init__(self, model: str = VERSION) -> None:
        self.model = model

    def complete(self, prompt: Prompt, params: Params, timeout: float) -> Completion:
        if prompt.task == "describe":
            return Completion(describe(prompt.application))
        label, rationale = decide(prompt.application)
        return Completion(json.dumps({"label": label, "rationale": rationale}))

    def close(self) -> None:
        return None


def create(model: str | None = None) -> RulesProvider:
    """``rules`` or ``rules:rubric-v1``; the rubric version is the model id."""
    if model not in (None, VERSION):
        from ..errors import ConfigurationError

        raise ConfigurationError(f"the rules provider knows only '{VERSION}', not '{model}'")
    return RulesProvider()
