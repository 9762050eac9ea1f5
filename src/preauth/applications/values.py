"""One value checked against its field: the one rule for files and requests alike.

A file's column is checked by :func:`.validation.validate` over its distinct values, a request's
few objects one value at a time by :mod:`preauth.service.intake`; both ask these functions, so a
value gets the same verdict and the same words wherever it came from. (Validation first screens a
column's numbers in Arrow, for speed on a million rows, and asks :func:`check_number` only for the
reason of those that fail.)
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .schema import LARGEST_NUMBER, MISSING_TOKENS, UNKNOWN, Field, OnUnknown, Schema, too_large_reason

SHOWN = 80
"""At most this many characters of a bad value are quoted in its reason (a cell may hold megabytes)."""
NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
"""What a number looks like, in files and requests: no ``inf``, ``nan``, ``1_000`` or ``0x10``."""
_NUMBER = re.compile(NUMBER_PATTERN, re.ASCII)


LISTED = 20
"""At most this many categories are named when a value is none of them: a lender's category may have
10,000 levels, and each rejected row's reason once listed every one (80 KB a line, on stderr and in
the rejects file)."""


def not_one_of(text: str, choices: Sequence[str]) -> str:
    """The one wording of a value that is none of a category's values (or a target's)."""
    shown = f"'{excerpt(text, SHOWN)}' is not one of"
    if len(choices) <= LISTED:
        return f"{shown}: {', '.join(choices)}"
    return f"{shown} the {len(choices):,} categories ({', '.join(choices[:LISTED])}, \u2026)"


def excerpt(text: str, limit: int = 200) -> str:
    """A value short enough to quote in a message or a rejects file (a bad line may be 50 MB)."""
    return text if len(text) <= limit else text[:limit] + "\u2026"


@dataclass(frozen=True)
class Value:
    """A checked value: ``value`` for the model (canonical category, float, or None for missing),
    ``given`` for output (as the user wrote it, typed), ``reason`` when the value is refused."""

    value: Any
    given: Any
    reason: str | None = None


def check_category(f: Field, text: str, schema: Schema, on_unknown: OnUnknown = "error") -> Value:
    """A category's text (stripped) against its levels, without regard to case."""
    lowered = text.lower()
    level = schema.level_lookup[f.name].get(lowered)
    if level is not None:
        return Value(level, level)
    if lowered in MISSING_TOKENS:
        if f.missing_is_unknown:
            return Value(f.missing, None)
        if not f.required:  # a blank optional field (Sex) is missing, as if its column were absent
            return Value(None, None)
        return Value(None, None, "missing value")
    if on_unknown == "unknown":
        return Value(f.missing or UNKNOWN, text)
    return Value(None, None, not_one_of(text, f.categories))


def check_number(f: Field, text: str) -> Value:
    """A number's text (stripped) against its kind and range."""
    if text.lower() in MISSING_TOKENS:
        if f.missing_allowed or not f.required:
            return Value(None, None)  # the schema lets this number be missing: scored as missing
        return Value(None, None, "missing value")
    kind = "a whole number" if f.kind == "integer" else "a number"
    number = float(text) if _NUMBER.match(text) else math.nan
    if not math.isfinite(number) or (f.kind == "integer" and number != round(number)):
        return Value(None, None, f"'{excerpt(text, SHOWN)}' is not {kind}")
    if abs(number) > LARGEST_NUMBER:
        return Value(None, None, too_large_reason(text))
    if f.positive:
        if number <= 0:
            return Value(None, None, f"{text} is not positive")
    elif f.minimum is not None and f.maximum is not None and not f.minimum <= number <= f.maximum:
        return Value(None, None, f"{text} is outside {f.minimum:g}\u2013{f.maximum:g}")
    return Value(number, int(number) if number.is_integer() else number)


def check_value(f: Field, text: str, schema: Schema, on_unknown: OnUnknown = "error") -> Value:
    """Any field's value: a category or a number."""
    return check_category(f, text, schema, on_unknown) if f.is_category else check_number(f, text)
