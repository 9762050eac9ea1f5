"""The schema of a credit application: a value that says what an application is.

A :class:`Schema` names its fields (kind, categories and their display labels, range, unit,
description, what a missing value means, name aliases, the direction risk may move), the target
(the outcome column and which of its values mean bad and good), the id column and the protected
attributes. It is read from a human-editable TOML file (:mod:`.schema_file`); German Credit is one
bundled file (:mod:`.german`), the default. A model bundle carries the schema it was trained on,
and everything downstream of a bundle reads that one. :func:`dump_schema` is here, beside the
value, because the schema's fingerprint is the hash of that text.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from ..errors import InputError

OnUnknown = Literal["error", "unknown"]
Direction = Literal["increasing", "decreasing"]
UNKNOWN = "unknown"
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "none", "null"})
LARGEST_NUMBER = 2**53 - 1
"""No number beyond this is accepted: past it a float64 no longer keeps every whole number exactly,
so the value stored, echoed and scored would silently differ from the one given."""
ID_COLUMN = "id"
"""The name ids go by in prepared files and results, whatever the input called its id column."""
ID_ALIASES = frozenset({"", "id", "index", "unnamed_0", "application_id", "applicant_id"})
DEFAULT_REFER_MARGIN = 0.10
"""How far beyond the training range a number may go before the application is referred, as a share
of the range's span, each side, when the schema does not say (``refer_margin``)."""
BAD, GOOD = "bad", "good"
"""The canonical outcome values: a target's own values (``1``/``0``, ``2``/``1``, ``yes``/``no``)
are read as these, so the model's 1 is always bad."""


def too_large_reason(text: str) -> str:
    """The one wording of the refusal of a number past :data:`LARGEST_NUMBER`."""
    return f"{text} is too large (at most {LARGEST_NUMBER:,})"


def normalize_name(name: str) -> str:
    """The spelling-free form of a column name: ``SAVING ACCOUNTS`` → ``saving_accounts``.

    Letters, digits and their marks of every script are kept (``Возраст`` → ``возраст``, ``Größe``
    → ``größe``, ``आयु`` → ``आयु``), the rest separates words; NFKC first, so a full-width ``Ａｇｅ``
    is ``age``. Only ASCII letters and digits once were kept: a lender's columns named in Cyrillic
    or Chinese all read as ``''``, one column, and the file was refused as having duplicates.
    The page's ``normalizeName`` (``page.js``) is the same function. Names of a sensible length are
    cached (the service maps every key of every request through here, and a lender has a few
    dozen); a key of a megabyte is not kept, or a client could fill the memory with them.
    """
    return _normalized(name) if len(name) <= _CACHED_LENGTH else _normalize(name)


_CACHED_LENGTH = 256


def _normalize(name: str) -> str:
    text = name.strip().lstrip("\ufeff")
    if text.isascii():  # the same answer, at the regular expression's speed
        return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")
    text = unicodedata.normalize("NFKC", text).lower()
    return "_".join("".join(c if unicodedata.category(c)[0] in "LMN" else " " for c in text).split())


_normalized = functools.lru_cache(maxsize=4096)(_normalize)


@dataclass(frozen=True)
class Field:
    """One column of an application, in the schema's own spelling.

    ``kind`` is ``integer`` (whole number), ``number`` or ``category``; an ordered category is a
    category with ``ordered`` set, its levels in order. ``missing`` is what a missing value means:
    for a category the level it is read as (German balances: ``unknown``), for a number a word
    saying why it may be empty (it is then scored as missing); ``None`` means a value is required.
    """

    name: str
    key: str
    kind: Literal["integer", "number", "category"]
    description: str
    example: Any
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False
    categories: tuple[str, ...] = ()
    missing: str | None = None
    required: bool = True
    aliases: tuple[str, ...] = ()
    readable: Mapping[str, str] = field(default_factory=dict)
    unit: str = ""
    ordered: bool = False
    direction: Literal["increasing", "decreasing"] | None = None
    """Risk never falls (``increasing``) or never rises (``decreasing``) as this number rises, or
    as an ordered category moves up its listed order; None: free."""
    refer_margin: float | None = None
    """This number's own refer margin (see :meth:`Schema.refer_margin_for`); None: the schema's."""

    @property
    def is_category(self) -> bool:
        return self.kind == "category"

    @property
    def missing_is_unknown(self) -> bool:
        """A missing value is a level of its own (categories) rather than a rejected row."""
        return self.is_category and self.missing is not None

    @property
    def missing_allowed(self) -> bool:
        return self.missing is not None

    @property
    def kind_words(self) -> str:
        """The kind as the schema file spells it."""
        if self.is_category:
            return "ordered category" if self.ordered else "category"
        return "whole number" if self.kind == "integer" else "number"

    def levels(self) -> tuple[str, ...]:
        """Category levels the model sees, the missing level last where a missing value is allowed."""
        if self.missing_is_unknown and self.missing not in self.categories:
            return (*self.categories, str(self.missing))
        return self.categories

    def describe_range(self) -> str:
        if self.positive:
            return "a positive number"
        return f"{self.minimum:g}\u2013{self.maximum:g}"


@dataclass(frozen=True)
class Target:
    """The outcome column and which of its values mean bad and good (compared without case)."""

    column: str
    bad: tuple[str, ...]
    good: tuple[str, ...]
    description: str = "The applicant's real repayment outcome"
    aliases: tuple[str, ...] = ()

    def as_field(self) -> Field:
        """The outcome as a category field, for validation and its messages."""
        return Field(
            self.column,
            normalize_name(self.column),
            "category",
            self.description,
            self.good[0],
            categories=(*self.good, *self.bad),
            required=False,
            aliases=self.aliases,
        )

    def outcome(self, value: str) -> str | None:
        """``bad``/``good`` for one of the target's values (or the canonical words), else None."""
        text = value.strip().lower()
        if text in {v.lower() for v in self.bad}:
            return BAD
        if text in {v.lower() for v in self.good}:
            return GOOD
        # Prepared files hold the canonical words, so a prepared file reads back under its schema.
        return text if text in (BAD, GOOD) else None


@dataclass(frozen=True)
class Costs:
    """What a wrong decision costs the lender, in any one unit: the threshold is chosen to make the
    expected cost per applicant smallest, and every cost shown is in these terms.

    German Credit's own matrix (Hofmann's documentation) is the default: approving an applicant
    who turns out bad costs 5, refusing one who would have repaid costs 1. A lender's schema sets
    its own in ``[costs]``: the threshold then follows its economics, not Hofmann's."""

    approve_bad: float = 5.0
    refuse_good: float = 1.0

    @property
    def text(self) -> str:
        return (
            f"approving a bad applicant costs {self.approve_bad:g}, "
            f"refusing a good one costs {self.refuse_good:g}"
        )

    @property
    def ratio(self) -> str:
        """``5:1``, as the summary's column heading shows it."""
        return f"{self.approve_bad:g}:{self.refuse_good:g}"

    @property
    def bayes_cut(self) -> float:
        """The threshold a perfectly calibrated model would use: refuse above this p(bad)."""
        return self.refuse_good / (self.approve_bad + self.refuse_good)


GERMAN_COSTS = Costs()
"""Hofmann's matrix for German Credit, and the costs of any schema that does not set its own."""


@dataclass(frozen=True)
class Schema:
    """What an application is: its fields, target, id column and protected attributes."""

    name: str
    fields: tuple[Field, ...]
    target: Target | None = None
    id_column: str = ID_COLUMN
    protected: tuple[str, ...] = ()
    description: str = ""
    source: str = field(default="", compare=False)
    """The file the schema was read from, for messages (not part of the schema's identity)."""
    refer_margin: float | None = None
    """The schema-wide refer margin; None: :data:`DEFAULT_REFER_MARGIN`."""
    costs: Costs = GERMAN_COSTS
    """What wrong decisions cost (``[costs]``; German Credit's 5:1 when the file says nothing)."""

    # ----------------------------------------------------------------------------------------
    # Names

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @cached_property
    def outcome(self) -> Field | None:
        """The target as a field (``Risk`` for German Credit), or None when the schema has no target."""
        return self.target.as_field() if self.target is not None else None

    @cached_property
    def _by_name(self) -> dict[str, Field]:
        every = (*self.fields, self.outcome) if self.outcome is not None else self.fields
        return {f.name: f for f in every}

    @cached_property
    def _aliases(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in self._by_name.values():
            for alias in (f.name, f.key, *f.aliases):
                out[normalize_name(alias)] = f.name
        return out

    def canonical_column(self, name: str) -> str | None:
        """The canonical name a column header refers to, or None when it is not one of the fields."""
        return self._aliases.get(normalize_name(name))

    def field(self, name: str) -> Field:
        """The field for a column name in any spelling, or an error listing them."""
        try:
            return self._by_name[name]
        except KeyError:
            canonical = self.canonical_column(name)
            if canonical is not None:
                return self._by_name[canonical]
            names = ", ".join(self._by_name)
            raise InputError(f"unknown column '{name}'; the columns are: {names}") from None

    @cached_property
    def level_lookup(self) -> dict[str, dict[str, str]]:
        """Per category field: its levels by their lower-case spelling (categories match without case)."""
        return {f.name: {c.lower(): c for c in f.levels()} for f in self.fields if f.is_category}

    @cached_property
    def level_codes(self) -> dict[str, dict[str, float]]:
        """Per category field: the code each level is encoded as, its position in :meth:`Field.levels`.

        The one definition of the codes, for files and requests alike. An ordered category's
        missing level has no code (it is encoded as missing): it has no place in the order."""
        return {
            f.name: {c: float(i) for i, c in enumerate(f.categories if f.ordered else f.levels())}
            for f in self.fields
            if f.is_category
        }

    def is_id_column(self, raw: str, position: int) -> bool:
        """Whether a header names the applicant's id (or is the leading unnamed index column)."""
        key = normalize_name(raw)
        return (
            key == normalize_name(self.id_column)
            or key in ID_ALIASES
            or (position == 0 and raw.strip() == "")
        )

    def refer_margin_for(self, name: str) -> float:
        """How far past the training range of number ``name`` a value may go before it is referred.

        A share of the range's span, each side: the field's own ``refer_margin``, else the schema's,
        else :data:`DEFAULT_REFER_MARGIN`. A lender sets it in the schema file because how far a
        model may be trusted beyond its data is a credit policy, not a property of the code.
        """
        own = self.field(name).refer_margin
        if own is not None:
            return own
        return DEFAULT_REFER_MARGIN if self.refer_margin is None else self.refer_margin

    # ----------------------------------------------------------------------------------------
    # Model inputs and examples

    def feature_columns(self, exclude: Iterable[str] | None = None, include: Iterable[str] = ()) -> list[str]:
        """Model input columns in schema order: all fields but the excluded (default: protected) ones."""
        included = {self.field(c).name for c in include}
        excluded = {self.field(c).name for c in (self.protected if exclude is None else exclude)} - included
        return [f.name for f in self.fields if f.name not in excluded]

    def example(self) -> dict[str, Any]:
        """One valid application under the schema's column names, for docs and OpenAPI examples."""
        return {f.name: f.example for f in self.fields}

    def required_columns(self, used: Iterable[str] = ()) -> set[str]:
        """Columns a file must have: the required fields, and those a model uses that have no
        missing meaning (a protected attribute brought back with ``--include``)."""
        wanted = set(used)
        return {f.name for f in self.fields if f.required or (f.name in wanted and not f.missing_allowed)}

    # ----------------------------------------------------------------------------------------
    # Identity

    def to_toml(self) -> str:
        return dump_schema(self)

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the schema's TOML text: two bundles with the same fingerprint read data alike."""
        return hashlib.sha256(self.to_toml().encode("utf-8")).hexdigest()

    def same_as(self, other: Schema) -> bool:
        return self.fingerprint == other.fingerprint


# --------------------------------------------------------------------------------------------
# The schema's canonical text (what its fingerprint hashes; :mod:`.schema_file` reads it back)


def dump_schema(schema: Schema, notes: Mapping[str, Sequence[str]] | None = None) -> str:
    """The schema as TOML text that :func:`parse_schema` reads back to the same schema.

    ``notes`` puts comment lines above a field (keyed by field name) or at the top (key ``""``):
    what ``preauth schema infer`` wants the user to confirm.
    """
    notes = notes or {}
    lines = [f"# {line}" for line in notes.get("", ())]
    lines.append(f"name = {_toml(schema.name)}")
    if schema.description:
        lines.append(f"description = {_toml(schema.description)}")
    lines.append(f"id = {_toml(schema.id_column)}")
    lines.append(f"protected = {_toml(list(schema.protected))}")
    if schema.refer_margin is not None:
        lines.append(f"refer_margin = {_toml(schema.refer_margin)}")
    if schema.target is not None:
        t = schema.target
        lines += ["", "[target]"]
        lines.append(f"column = {_toml(t.column)}")
        lines.append(f"description = {_toml(t.description)}")
        lines.append(f"bad = {_toml(list(t.bad))}")
        lines.append(f"good = {_toml(list(t.good))}")
        if t.aliases:
            lines.append(f"aliases = {_toml(list(t.aliases))}")
    if schema.costs != GERMAN_COSTS:  # German Credit's matrix is written by no one: the fingerprints stay
        lines += ["", "[costs]"]
        lines.append(f"approve_bad = {_toml(schema.costs.approve_bad)}")
        lines.append(f"refuse_good = {_toml(schema.costs.refuse_good)}")
    for f in schema.fields:
        lines.append("")
        lines += [f"# {line}" for line in notes.get(f.name, ())]
        lines.append("[[fields]]")
        lines.append(f"name = {_toml(f.name)}")
        if f.key != normalize_name(f.name):
            lines.append(f"key = {_toml(f.key)}")
        lines.append(f"kind = {_toml(f.kind_words)}")
        if f.description:
            lines.append(f"description = {_toml(f.description)}")
        if f.is_category:
            lines.append(f"categories = {_toml(list(f.categories))}")
        elif f.positive:
            lines.append("positive = true")
        else:
            lines.append(f"minimum = {_toml(f.minimum)}")
            lines.append(f"maximum = {_toml(f.maximum)}")
        if f.unit:
            lines.append(f"unit = {_toml(f.unit)}")
        if f.direction:
            lines.append(f"direction = {_toml(f.direction)}")
        if f.refer_margin is not None:
            lines.append(f"refer_margin = {_toml(f.refer_margin)}")
        if f.missing is not None:
            lines.append(f"missing = {_toml(f.missing)}")
        if not f.required:
            lines.append("required = false")
        if f.aliases:
            lines.append(f"aliases = {_toml(list(f.aliases))}")
        if f.readable:
            lines.append(f"labels = {_toml(dict(f.readable))}")
        lines.append(f"example = {_toml(f.example)}")
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    """One TOML value: JSON's string escapes are TOML's basic-string escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {type(value).__name__}")
