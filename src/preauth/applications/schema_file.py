"""Schema files: a :class:`~.schema.Schema` read from and written to human-editable TOML.

A lender edits this file, so every mistake in it gets its own line naming the file and the field
or key, all of them at once (fixing one mistake per run would be a slow way to learn the format).
The writer is small and ours: the format is a handful of keys, and a file ``dump_schema`` writes
reads back to the same schema.

Layout::

    name = "german_credit"
    id = "id"                        # the applicant's id column (optional)
    protected = ["Sex"]              # kept for fairness measurement, never a model input unless asked
    refer_margin = 0.1               # optional: refer a number this share of its training range past it

    [target]                         # optional: the real outcome
    column = "Risk"
    bad = ["bad"]
    good = ["good"]

    [[fields]]
    name = "Age"
    kind = "whole number"            # number | whole number | category | ordered category
    minimum = 18
    maximum = 100
    refer_margin = 0.25              # optional: this field's own margin
    direction = "increasing"         # optional: risk never falls as this number rises

    [[fields]]
    name = "Savings"
    kind = "ordered category"        # levels listed from lowest to highest
    categories = ["little", "moderate", "rich"]
    direction = "decreasing"         # optional: risk never rises up the listed order
    missing = "unknown"              # a missing value: outside the order, so free of the direction
    ...
"""

from __future__ import annotations

import collections
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..decisions import RESULTS_FILE_COLUMNS
from ..errors import ConfigurationError
from .schema import ID_COLUMN, Costs, Field, Schema, Target, normalize_name
from .values import check_number

KINDS = {
    "number": ("number", False),
    "whole number": ("integer", False),
    "category": ("category", False),
    "ordered category": ("category", True),
}
DIRECTIONS = ("increasing", "decreasing")
_TOP_KEYS = {"name", "description", "id", "protected", "target", "fields", "refer_margin", "costs"}
_COST_KEYS = {"approve_bad", "refuse_good"}
_TARGET_KEYS = {"column", "bad", "good", "description", "aliases"}
_FIELD_KEYS = {
    "name",
    "key",
    "kind",
    "description",
    "example",
    "minimum",
    "maximum",
    "positive",
    "categories",
    "labels",
    "missing",
    "required",
    "aliases",
    "unit",
    "direction",
    "refer_margin",
}


class SchemaError(ConfigurationError):
    """A schema file with mistakes: one line per mistake, each naming the file and the field or key."""

    exit_code = 2

    def __init__(self, mistakes: Sequence[str]) -> None:
        self.mistakes = list(mistakes)
        super().__init__("\n".join(self.mistakes))


def load_schema(path: str | Path) -> Schema:
    """Read and check a schema file; raises :class:`SchemaError` listing every mistake."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SchemaError([f"{source}: schema file not found"]) from None
    except IsADirectoryError:
        raise SchemaError([f"{source}: is a directory, not a schema file"]) from None
    except UnicodeDecodeError:
        raise SchemaError([f"{source}: not UTF-8 text; save the schema file as UTF-8"]) from None
    return parse_schema(text, source)


def parse_schema(text: str, source: str = "<schema>") -> Schema:
    """A schema from TOML text; ``source`` names it in messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SchemaError([f"{source}: not valid TOML ({error})"]) from None
    return _Reader(source).schema(data)


class _Reader:
    """Turns parsed TOML into a Schema, collecting every mistake on the way."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.mistakes: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.mistakes.append(f"{self.source}: {where}: {message}" if where else f"{self.source}: {message}")

    def schema(self, data: dict[str, Any]) -> Schema:
        for key in sorted(set(data) - _TOP_KEYS):
            self.fail(f"key '{key}'", f"unknown key; the keys are: {', '.join(sorted(_TOP_KEYS))}")
        name = self.text(data, "name", "", default=Path(self.source).stem or "schema")
        description = self.text(data, "description", "", default="")
        id_column = self.text(data, "id", "", default=ID_COLUMN)
        raw_fields = data.get("fields")
        fields: list[Field] = []
        if not isinstance(raw_fields, list) or not raw_fields:
            self.fail("", "no fields: add a [[fields]] table for each column")
        else:
            for number, raw in enumerate(raw_fields, start=1):
                if not isinstance(raw, dict):
                    self.fail(f"fields entry {number}", "must be a table ([[fields]])")
                    continue
                built = self.field(raw, number)
                if built is not None:
                    fields.append(built)
        target = self.target(data.get("target"))
        self.check_names(fields, target, id_column)
        protected = self.strings(data, "protected", "key 'protected'")
        known = {normalize_name(f.name): f.name for f in fields}
        canonical_protected = []
        for name_ in protected:
            if normalize_name(name_) not in known:
                self.fail("key 'protected'", f"'{name_}' is not one of the fields")
            else:
                canonical_protected.append(known[normalize_name(name_)])
        refer_margin = self.margin(data, "key 'refer_margin'")
        costs = self.costs(data.get("costs"))
        if self.mistakes:
            raise SchemaError(self.mistakes)
        return Schema(
            name=name,
            fields=tuple(fields),
            target=target,
            id_column=id_column,
            protected=tuple(canonical_protected),
            description=description,
            source=self.source,
            refer_margin=refer_margin,
            costs=costs,
        )

    def costs(self, raw: Any) -> Costs:
        """``[costs]``: what approving a bad applicant and refusing a good one cost, both above 0."""
        if raw is None:
            return Costs()
        if not isinstance(raw, dict):
            self.fail("key 'costs'", "must be a table ([costs] with approve_bad and refuse_good)")
            return Costs()
        for key in sorted(set(raw) - _COST_KEYS):
            self.fail(f"costs key '{key}'", f"unknown key; the keys are: {', '.join(sorted(_COST_KEYS))}")
        found = {}
        for key in sorted(_COST_KEYS):
            value = self.number(raw, key, "[costs]")
            if key not in raw:
                self.fail("[costs]", f"'{key}' is missing (both costs are needed to choose a threshold)")
            elif value is not None and value <= 0:
                self.fail("[costs]", f"'{key}' must be above 0, got {value:g}")
            elif value is not None:
                found[key] = float(value)
        return Costs(**found) if len(found) == len(_COST_KEYS) else Costs()

    # ----------------------------------------------------------------------------------------
    # Values

    def text(self, data: Mapping[str, Any], key: str, where: str, *, default: str | None = None) -> str:
        value = data.get(key)
        if value is None:
            if default is None:
                self.fail(where, f"'{key}' is missing")
                return ""
            return default
        if not isinstance(value, str):
            self.fail(where, f"'{key}' must be text, got {_shown(value)}")
            return default or ""
        return value

    def strings(self, data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(
            isinstance(v, str | int) and not isinstance(v, bool) for v in value
        ):
            self.fail(where, f"'{key}' must be a list of text values, got {_shown(value)}")
            return ()
        return tuple(str(v) for v in value)

    def number(self, data: Mapping[str, Any], key: str, where: str) -> float | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(where, f"'{key}' must be a number, got {_shown(value)}")
            return None
        return value

    def margin(self, data: Mapping[str, Any], where: str) -> float | None:
        """A ``refer_margin``: a share of the training range, zero or more (0: refer anything outside it)."""
        value = self.number(data, "refer_margin", where)
        if value is not None and value < 0:
            self.fail(
                where, f"'refer_margin' must be 0 or more (a share of the training range), got {value:g}"
            )
            return None
        return None if value is None else float(value)

    def flag(self, data: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.fail(where, f"'{key}' must be true or false, got {_shown(value)}")
            return default
        return value

    # ----------------------------------------------------------------------------------------
    # Fields

    def field(self, raw: dict[str, Any], number: int) -> Field | None:
        name = raw.get("name")
        where = f"field '{name}'" if isinstance(name, str) and name.strip() else f"fields entry {number}"
        before = len(self.mistakes)
        if not isinstance(name, str) or not name.strip():
            self.fail(where, "'name' is missing")
            name = ""
        for key in sorted(set(raw) - _FIELD_KEYS):
            self.fail(where, f"unknown key '{key}'; the keys are: {', '.join(sorted(_FIELD_KEYS))}")
        kind_text = raw.get("kind")
        if kind_text not in KINDS:
            self.fail(where, f"'kind' must be one of: {', '.join(KINDS)}; got {_shown(kind_text)}")
            return None
        kind, ordered = KINDS[kind_text]
        description = self.text(raw, "description", where, default="")
        unit = self.text(raw, "unit", where, default="")
        key = self.text(raw, "key", where, default=normalize_name(name))
        aliases = self.strings(raw, "aliases", where)
        required = self.flag(raw, "required", where, True)
        missing = raw.get("missing")
        if missing is not None and (not isinstance(missing, str) or not missing.strip()):
            self.fail(
                where, f"'missing' must be text saying what a missing value means, got {_shown(missing)}"
            )
            missing = None
        labels_raw = raw.get("labels", {})
        labels: dict[str, str] = {}
        if not isinstance(labels_raw, dict) or not all(isinstance(v, str) for v in labels_raw.values()):
            self.fail(where, "'labels' must be a table of value = \"display label\"")
        else:
            labels = {str(k): v for k, v in labels_raw.items()}
        categories: tuple[str, ...] = ()
        minimum = maximum = None
        positive = False
        direction = raw.get("direction")
        if kind == "category":
            categories = self.strings(raw, "categories", where)
            if not categories and "categories" in raw and isinstance(raw["categories"], list):
                self.fail(where, "'categories' is empty")
            elif "categories" not in raw:
                self.fail(where, f"a {kind_text} needs 'categories'")
            # Counted in one pass: ``list.count`` per level took seconds for a lender's 10,000
            # levels, at every load of the schema (train, predict, serve, each bundle read).
            counts = collections.Counter(c.lower() for c in categories)
            lowered = set(counts)
            for c in sorted(c for c, n in counts.items() if n > 1):
                self.fail(where, f"category '{c}' is listed twice")
            for c in categories:  # a cell is read stripped, and a blank one is missing
                if not c.strip():
                    self.fail(
                        where,
                        f"category {json.dumps(c)} is blank: a blank value is missing ('missing' says what it means)",
                    )
                elif c != c.strip():
                    self.fail(
                        where,
                        f"category {json.dumps(c)} has spaces around it: values are read without them, so none would match",
                    )
            for key_ in ("minimum", "maximum", "positive", "refer_margin"):
                if key_ in raw:
                    self.fail(where, f"'{key_}' applies to numbers, not to a {kind_text}")
            if "direction" in raw and not ordered:
                self.fail(
                    where,
                    "'direction' applies to numbers and ordered categories: a category's levels have "
                    'no order (list them in order and make it kind = "ordered category")',
                )
                direction = None
            for value in labels:
                if value.lower() not in lowered and value != missing:
                    self.fail(where, f"label for '{value}', which is not one of the categories")
        else:
            if "categories" in raw:
                self.fail(where, f"'categories' applies to categories, not to a {kind_text}")
            minimum = self.number(raw, "minimum", where)
            maximum = self.number(raw, "maximum", where)
            positive = self.flag(raw, "positive", where, False)
            if positive and (minimum is not None or maximum is not None):
                self.fail(where, "give either 'positive = true' or 'minimum' and 'maximum', not both")
            elif not positive and (minimum is None or maximum is None):
                self.fail(where, "a number needs 'minimum' and 'maximum' (or 'positive = true')")
            elif minimum is not None and maximum is not None and minimum > maximum:
                self.fail(where, f"'minimum' {minimum:g} is above 'maximum' {maximum:g}")
        if direction is not None and direction not in DIRECTIONS:
            self.fail(where, f"'direction' must be one of: {', '.join(DIRECTIONS)}; got {_shown(direction)}")
            direction = None
        refer_margin = self.margin(raw, where) if kind != "category" else None
        example = raw.get("example")
        if len(self.mistakes) > before:
            return None
        given = example is not None
        if example is None:
            example = _default_example(kind, categories, minimum, maximum, positive)
        elif kind == "category" and isinstance(example, str):
            example = next((c for c in categories if c.lower() == example.lower()), example)
        built = Field(
            name=name,
            key=key,
            kind=kind,  # type: ignore[arg-type]
            description=description,
            example=example,
            minimum=minimum,
            maximum=maximum,
            positive=positive,
            categories=categories,
            missing=missing,
            required=required,
            aliases=aliases,
            readable=labels,
            unit=unit,
            ordered=ordered,
            direction=direction,
            refer_margin=refer_margin,
        )
        if given and not _example_fits(example, built):
            self.fail(where, f"'example' {_shown(example)} is not a valid value of this field")
            return None
        return built

    def target(self, raw: Any) -> Target | None:
        if raw is None:
            return None
        where = "[target]"
        if not isinstance(raw, dict):
            self.fail(where, "must be a table")
            return None
        before = len(self.mistakes)
        for key in sorted(set(raw) - _TARGET_KEYS):
            self.fail(where, f"unknown key '{key}'; the keys are: {', '.join(sorted(_TARGET_KEYS))}")
        column = self.text(raw, "column", where)
        bad = self.strings(raw, "bad", where)
        good = self.strings(raw, "good", where)
        if "bad" not in raw or not bad:
            self.fail(
                where, '\'bad\' must list the values that mean bad risk, e.g. bad = ["bad"] or bad = ["1"]'
            )
        if "good" not in raw or not good:
            self.fail(
                where,
                '\'good\' must list the values that mean good risk, e.g. good = ["good"] or good = ["0"]',
            )
        both = {v.lower() for v in bad} & {v.lower() for v in good}
        for value in sorted(both):
            self.fail(where, f"'{value}' is listed as both bad and good")
        description = self.text(raw, "description", where, default="The applicant's real repayment outcome")
        aliases = self.strings(raw, "aliases", where)
        if len(self.mistakes) > before:
            return None
        return Target(column, bad, good, description, aliases)

    def check_names(self, fields: list[Field], target: Target | None, id_column: str) -> None:
        """Every spelling must name one column: two fields (or a field and the target) may not share one."""
        seen: dict[str, tuple[int, str]] = {}
        every: list[tuple[str, str, tuple[str, ...]]] = [
            (f"field '{f.name}'", f.name, (f.name, f.key, *f.aliases)) for f in fields
        ]
        if target is not None:
            every.append(("[target]", target.column, (target.column, *target.aliases)))
        for number, (where, owner, spellings) in enumerate(every):
            for spelling in spellings:
                key = normalize_name(spelling)
                if not key:
                    self.fail(where, f"the name '{spelling}' has no letters or digits")
                elif key in RESERVED and where != "[target]":
                    self.fail(where, f"{reserved_name(spelling)}; rename the column in the data to use it")
                    break
                elif key in seen and seen[key][0] != number:
                    other = seen[key][1]
                    said = (
                        "is listed twice" if other == owner else f"'{spelling}' is also a name of '{other}'"
                    )
                    self.fail(where, said if other != owner else f"'{owner}' {said}")
                    break
                else:
                    seen[key] = (number, owner)
        if normalize_name(id_column) in seen:
            self.fail("key 'id'", f"'{id_column}' is also a name of '{seen[normalize_name(id_column)][1]}'")


RESERVED = frozenset(normalize_name(c) for c in RESULTS_FILE_COLUMNS)
"""Names no field may have (in any spelling): a results file's own columns."""


def reserved_name(column: str) -> str:
    """Why a field may not be spelled ``column``: the one wording for the schema file and ``infer``."""
    return f"'{column}' is a results file's own column ({', '.join(RESULTS_FILE_COLUMNS)})"


def _default_example(
    kind: str, categories: tuple[str, ...], minimum: float | None, maximum: float | None, positive: bool
) -> Any:
    if kind == "category":
        return categories[0]
    if positive:
        return 1
    assert minimum is not None and maximum is not None
    middle = (minimum + maximum) / 2
    return int(round(middle)) if kind == "integer" or float(middle).is_integer() else middle


def _example_fits(value: Any, f: Field) -> bool:
    """Whether an example is a value the field accepts: a number by the one check values get
    (:func:`.values.check_number`). ``example = inf`` once ended in an OverflowError traceback
    (rounded to test it was whole), and ``1e300`` was shown as the example of a field refusing it."""
    if f.is_category:
        return isinstance(value, str) and value in f.categories
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return check_number(f, repr(value) if isinstance(value, float) else str(value)).reason is None


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if value is None:
        return "nothing"
    return json.dumps(value, default=str)


# --------------------------------------------------------------------------------------------
# Writing
