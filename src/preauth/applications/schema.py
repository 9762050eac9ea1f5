"""The schema of a credit application: the one place that says what an application is.

Every other stage (labels, training, scoring, the service, the page) derives its columns, types,
categories, ranges, units and examples from :data:`FIELDS`. Change the schema here and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InputError

OnUnknown = Literal["error", "unknown"]
UNKNOWN = "unknown"
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "none", "null"})
LARGEST_NUMBER = 2**53 - 1
"""No number beyond this is accepted: past it a float64 no longer keeps every whole number exactly,
so the value stored, echoed and scored would silently differ from the one given."""


def too_large_reason(text: str) -> str:
    """The one wording of the refusal of a number past :data:`LARGEST_NUMBER`."""
    return f"{text} is too large (at most {LARGEST_NUMBER:,})"


@dataclass(frozen=True)
class Field:
    """One column of an application, in the original pipeline's spelling."""

    name: str
    key: str
    kind: Literal["integer", "number", "category"]
    description: str
    example: Any
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False
    categories: tuple[str, ...] = ()
    missing_is_unknown: bool = False
    required: bool = True
    aliases: tuple[str, ...] = ()
    readable: Mapping[str, str] = field(default_factory=dict)
    unit: str = ""
    direction: Literal["increasing", "decreasing"] | None = None
    """How the risk of bad repayment must move as this number rises, whatever the rest of the
    application: the model is trained under that monotone constraint (numbers only)."""

    @property
    def is_category(self) -> bool:
        return self.kind == "category"

    def levels(self) -> tuple[str, ...]:
        """Category levels the model sees, ``unknown`` last where a missing value is allowed."""
        if self.missing_is_unknown:
            return (*self.categories, UNKNOWN)
        return self.categories

    def describe_range(self) -> str:
        if self.positive:
            return "a positive number"
        return f"{self.minimum:g}\u2013{self.maximum:g}"


FIELDS: tuple[Field, ...] = (
    Field("Age", "age", "integer", "Applicant's age in years", 35, minimum=18, maximum=100, unit="years"),
    Field(
        "Sex",
        "sex",
        "category",
        "Applicant's sex; kept for fairness checks, left out of the model by default",
        "male",
        categories=("male", "female"),
        required=False,
    ),
    Field(
        "Job",
        "job",
        "integer",
        "0 unskilled non-resident, 1 unskilled resident, 2 skilled, 3 highly skilled",
        2,
        minimum=0,
        maximum=3,
        readable={
            "0": "unskilled, non-resident",
            "1": "unskilled, resident",
            "2": "skilled",
            "3": "highly skilled",
        },
    ),
    Field(
        "Housing",
        "housing",
        "category",
        "Whether the applicant owns, rents or lives free",
        "own",
        categories=("own", "rent", "free"),
    ),
    Field(
        "Saving accounts",
        "saving_accounts",
        "category",
        "Balance of savings accounts; missing means unknown",
        "little",
        categories=("little", "moderate", "quite rich", "rich"),
        missing_is_unknown=True,
        required=False,
        aliases=("savings account", "savings accounts", "saving account"),
    ),
    Field(
        "Checking account",
        "checking_account",
        "category",
        "Balance of the checking account; missing means unknown",
        "little",
        categories=("little", "moderate", "rich"),
        missing_is_unknown=True,
        required=False,
        aliases=("checking accounts",),
    ),
    Field(
        "Credit amount",
        "credit_amount",
        "number",
        "Amount asked for, in Deutsche Mark",
        2500,
        positive=True,
        aliases=("amount",),
        unit="DM",
        direction="increasing",
    ),
    Field(
        "Duration",
        "duration",
        "integer",
        "Loan duration in months",
        12,
        positive=True,
        unit="months",
        direction="increasing",
    ),
    Field(
        "Purpose",
        "purpose",
        "category",
        "What the loan is for",
        "car",
        categories=(
            "car",
            "furniture/equipment",
            "radio/TV",
            "domestic appliances",
            "repairs",
            "education",
            "business",
            "vacation/others",
        ),
    ),
)

OUTCOME = Field(
    "Risk",
    "risk",
    "category",
    "The applicant's real repayment outcome",
    "good",
    categories=("good", "bad"),
    required=False,
)
ID_COLUMN = "id"
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
DEFAULT_EXCLUDED: tuple[str, ...] = ("Sex",)
"""Left out of the model by default: sex is a prohibited basis for credit decisions (ECOA/Reg B)."""

_BY_NAME = {f.name: f for f in (*FIELDS, OUTCOME)}
_ID_ALIASES = frozenset({"", "id", "index", "unnamed_0", "application_id", "applicant_id"})


def field_by_name(name: str) -> Field:
    """The field for a column name in any spelling (``saving_accounts``), or an error listing them."""
    try:
        return _BY_NAME[name]
    except KeyError:
        canonical = canonical_column(name)
        if canonical is not None:
            return _BY_NAME[canonical]
        names = ", ".join(_BY_NAME)
        raise InputError(f"unknown column '{name}'; the columns are: {names}") from None


def normalize_name(name: str) -> str:
    """The spelling-free form of a column name: ``SAVING ACCOUNTS`` → ``saving_accounts``."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lstrip("\ufeff").lower()).strip("_")


_ALIASES: dict[str, str] = {}
for _f in (*FIELDS, OUTCOME):
    for _alias in (_f.name, _f.key, *_f.aliases):
        _ALIASES[normalize_name(_alias)] = _f.name


def canonical_column(name: str) -> str | None:
    """The canonical name a column header refers to, or None when it is not an application field."""
    return _ALIASES.get(normalize_name(name))


def feature_columns(exclude: Iterable[str] = DEFAULT_EXCLUDED, include: Iterable[str] = ()) -> list[str]:
    """Model input columns in schema order: all fields but the excluded ones."""
    included = {field_by_name(c).name for c in include}
    excluded = {field_by_name(c).name for c in exclude} - included
    return [f.name for f in FIELDS if f.name not in excluded]


def example_application() -> dict[str, Any]:
    """One valid application under the original column names, for docs and OpenAPI examples."""
    return {f.name: f.example for f in FIELDS}
