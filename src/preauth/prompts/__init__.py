"""Versioned prompt templates and the reading of a model's answers.

Templates are plain files in this package, ``<task>-<version>.txt`` (``describe-v1.txt``,
``classify-v1.txt``, ``repair-v1.txt``), with ``### system`` / ``### user`` sections and
``$placeholders`` filled from an application's fields (``$age``, ``$credit_amount``, ...) and, for
classification, ``$description``. A new wording is a new version file: the version is recorded with
every label and is part of the cache key, so old labels stay explainable and are never mixed up with
new ones. Sex is deliberately not offered to the templates: it is a prohibited basis for credit
decisions and must not steer the labels a model is trained on.

German Credit keeps its own templates word for word (cached answers stay valid). Any other schema
is described from the schema itself (``describe-fields-<version>.txt``): one line per field, in the
schema's words (name, value with its display label and unit, description), protected attributes
left out.

Answers are parsed forgivingly (bare JSON, fenced JSON, JSON inside prose, plain words) because
models rarely follow format instructions perfectly; only answers that name both labels or neither
are unreadable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from string import Template
from typing import Any, Literal

from ..applications import GERMAN, Schema
from ..errors import ConfigurationError

Task = Literal["describe", "classify", "repair"]
"""What a prompt asks for (and a provider answers: :mod:`preauth.providers` re-exports it)."""


@dataclass(frozen=True)
class Message:
    """One chat message of a rendered prompt: ``system``, ``user`` or ``assistant``."""

    role: str
    content: str


DEFAULT_VERSION = "v1"
GOOD, BAD = "good risk", "bad risk"
LABELS = (GOOD, BAD)

JOB_TEXT = {0: "unskilled and non-resident", 1: "unskilled and resident", 2: "skilled", 3: "highly skilled"}
"""Plain words for the schema's Job codes (see ``preauth.applications.FIELDS``)."""


@lru_cache(maxsize=32)
def template(task: str, version: str = DEFAULT_VERSION) -> tuple[tuple[str, Template], ...]:
    """The (role, template) sections of one prompt file."""
    name = f"{task}-{version}.txt"
    try:
        text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"no prompt template '{name}' in preauth/prompts") from None
    sections: list[tuple[str, Template]] = []
    for match in re.finditer(r"^### (system|user|assistant)\n(.*?)(?=^### |\Z)", text, re.M | re.S):
        sections.append((match.group(1), Template(match.group(2).strip())))
    if not sections:
        raise ConfigurationError(f"prompt template '{name}' has no '### system' or '### user' section")
    return tuple(sections)


def _number(value: Any) -> str:
    number = float(value)
    return f"{number:,.0f}" if number.is_integer() else f"{number:,.2f}"


def fields_for_prompt(application: Mapping[str, Any]) -> dict[str, str]:
    """Template values from an application under canonical column names (Sex left out)."""
    job = application.get("Job")
    return {
        "age": _number(application["Age"]),
        "job": JOB_TEXT.get(int(job), str(job)) if job is not None else "unknown",
        "housing": str(application["Housing"]),
        "saving_accounts": str(application.get("Saving accounts") or "unknown"),
        "checking_account": str(application.get("Checking account") or "unknown"),
        "credit_amount": _number(application["Credit amount"]),
        "duration": _number(application["Duration"]),
        "purpose": str(application["Purpose"]),
    }


def facts_for_prompt(application: Mapping[str, Any], schema: Schema) -> str:
    """One line per field of any schema, in its own words; protected attributes left out."""
    lines = []
    for f in schema.fields:
        if f.name in schema.protected:
            continue
        value = application.get(f.name)
        if value is None or (isinstance(value, float) and value != value):
            shown = f.missing if f.missing and f.is_category else "unknown"
        elif f.is_category:
            shown = f.readable.get(str(value), str(value))
        else:
            shown = _number(value)
            label = f.readable.get(shown) if f.readable else None
            shown = f"{label} ({shown})" if label else f"{shown} {f.unit}".rstrip()
        about = f" ({f.description})" if f.description else ""
        lines.append(f"{f.name}: {shown}{about}")
    return "\n".join(lines)


def render(
    task: Task,
    application: Mapping[str, Any],
    *,
    description: str | None = None,
    version: str = DEFAULT_VERSION,
    schema: Schema = GERMAN,
) -> tuple[Message, ...]:
    """The chat messages for one task and applicant."""
    german = schema is GERMAN or schema.same_as(GERMAN)
    values = fields_for_prompt(application) if german else {"facts": facts_for_prompt(application, schema)}
    values["description"] = description or ""
    name = task if german or task != "describe" else "describe-fields"
    try:
        return tuple(Message(role, t.substitute(values)) for role, t in template(name, version))  # type: ignore[arg-type]
    except (KeyError, ValueError) as error:
        raise ConfigurationError(
            f"prompt template '{task}-{version}.txt' has a bad placeholder: {error}"
        ) from None


def repair_messages(
    messages: tuple[Message, ...], answer: str, *, version: str = DEFAULT_VERSION
) -> tuple[Message, ...]:
    """The classify conversation continued with the unreadable answer and a request to fix it."""
    follow_up = tuple(Message(role, t.substitute({})) for role, t in template("repair", version))
    return (*messages, Message("assistant", answer), *follow_up)


# ------------------------------------------------------------------------------------------
# Answers


@dataclass(frozen=True)
class Verdict:
    """A readable classification."""

    label: str
    rationale: str


def normalize_label(value: Any) -> str | None:
    """``good risk`` / ``bad risk`` from the spellings models and files use, else None."""
    if value is None:
        return None
    text = re.sub(r"[\s_\-]+", " ", str(value)).strip(" .!\"'").lower()
    if text in {"good risk", "good", "low risk", "0"}:
        return GOOD
    if text in {"bad risk", "bad", "high risk", "1"}:
        return BAD
    return None


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_LABEL_KEYS = ("label", "target", "classification", "risk", "class", "decision")


def _objects(text: str) -> list[Any]:
    """JSON objects found in an answer: the whole text, fenced blocks, then every {...} span."""
    candidates = [text, *_FENCE.findall(text)]
    starts = [m.start() for m in re.finditer(r"\{", text)]
    for start in starts:
        depth = 0
        for end in range(start, len(text)):
            if text[end] == "{":
                depth += 1
            elif text[end] == "}":
                depth -= 1
                if depth == 0:
                    candidates.append(text[start : end + 1])
                    break
    found = []
    for candidate in candidates:
        try:
            found.append(json.loads(candidate.strip()))
        except (json.JSONDecodeError, ValueError):
            continue
    return found


def parse_verdict(answer: str) -> Verdict | None:
    """Read a classify answer; None when it names no label or both."""
    for obj in _objects(answer):
        if not isinstance(obj, dict):
            continue
        lowered = {str(k).lower(): v for k, v in obj.items()}
        for key in _LABEL_KEYS:
            if key in lowered:
                label = normalize_label(lowered[key])
                if label is not None:
                    rationale = (
                        lowered.get("rationale") or lowered.get("reason") or lowered.get("explanation")
                    )
                    return Verdict(label, str(rationale or "").strip())
    words = answer.lower()
    good = re.search(r"\bgood[\s_\-]*risk\b", words) is not None
    bad = re.search(r"\bbad[\s_\-]*risk\b", words) is not None
    if good != bad and not _objects(answer):
        return Verdict(GOOD if good else BAD, _first_sentence_without_label(answer))
    return None


def _first_sentence_without_label(answer: str) -> str:
    text = re.sub(r"\b(good|bad)[\s_\-]*risk\b[.:]?", "", answer, flags=re.I).strip(" .:-\n\"'")
    return text.split("\n")[0][:300]


def clean_description(answer: str) -> str:
    """A description as one tidy paragraph (models like to wrap it in quotes or a preamble)."""
    text = answer.strip().strip('"').strip()
    text = re.sub(r"^(here is|here's) (a|the) (short )?description[^:\n]*:\s*", "", text, flags=re.I)
    return re.sub(r"\s+", " ", text).strip().strip('"').strip()
