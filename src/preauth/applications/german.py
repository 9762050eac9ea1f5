"""German Credit (Hofmann 1994), the bundled default schema, and the module-level views of it.

Kept apart from :mod:`.schema` (the value) and :mod:`.schema_file` (its TOML), which it uses both
of: the default is one schema file read like any lender's.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .schema import ID_ALIASES, Field, Schema
from .schema_file import load_schema

# --------------------------------------------------------------------------------------------
# The default schema, German Credit, and the module-level views of it

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
GERMAN_CREDIT_FILE = SCHEMAS_DIR / "german_credit.toml"


def _load_default() -> Schema:
    return load_schema(GERMAN_CREDIT_FILE)


GERMAN: Schema = _load_default()
"""German Credit (Hofmann 1994), the bundled default schema."""

FIELDS: tuple[Field, ...] = GERMAN.fields
assert GERMAN.outcome is not None
OUTCOME: Field = GERMAN.outcome
FIELD_NAMES: tuple[str, ...] = GERMAN.field_names
DEFAULT_EXCLUDED: tuple[str, ...] = GERMAN.protected
"""Left out of the model by default: sex is a prohibited basis for credit decisions (ECOA/Reg B)."""
_ID_ALIASES = ID_ALIASES


def field_by_name(name: str) -> Field:
    """The default schema's field for a column name in any spelling, or an error listing them."""
    return GERMAN.field(name)


def canonical_column(name: str) -> str | None:
    """The default schema's canonical name for a column header, or None."""
    return GERMAN.canonical_column(name)


def feature_columns(exclude: Iterable[str] = DEFAULT_EXCLUDED, include: Iterable[str] = ()) -> list[str]:
    """Model input columns of the default schema in schema order."""
    return GERMAN.feature_columns(exclude=exclude, include=include)


def example_application() -> dict[str, Any]:
    """One valid application of the default schema."""
    return GERMAN.example()
