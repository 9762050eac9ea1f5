"""Proposing a schema from a lender's file: ``preauth schema infer``.

A proposal, not a verdict: kinds, categories and ranges (with a margin, so tomorrow's applicant
one year older is not refused) are read from the data; what the data cannot say (what a missing
value means, which attributes are protected) is marked in the file for the user to confirm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .schema import DEFAULT_REFER_MARGIN, ID_ALIASES, LARGEST_NUMBER, Field, Schema, Target, normalize_name
from .schema_file import RESERVED, reserved_name

MAX_CATEGORIES = 50
"""A text column with more distinct values than this is not a category (a name, a free-text note)."""
MARGIN = 0.1
"""Ranges are widened by this share of the observed span on each side."""
PROTECTED_NAMES = frozenset(
    {"sex", "gender", "race", "ethnicity", "religion", "national_origin", "marital", "marital_status"}
)
"""Prohibited bases for credit decisions (US ECOA/Reg B): proposed as protected attributes."""
_BAD_WORDS = ("bad", "yes", "default", "defaulted", "true", "y")
_EMPTY = frozenset({"", "na", "n/a", "nan", "null"})
"""Cells read as missing when proposing. Unlike validation, ``none`` is kept: it is often a category
("no savings") and a schema that lists it as one reads it as one."""


@dataclass(frozen=True)
class Proposal:
    """A proposed schema, with notes (per field name, ``""`` for the whole file) to confirm."""

    schema: Schema
    notes: dict[str, list[str]]
    skipped: list[str]


def infer_schema(
    table: pd.DataFrame,
    *,
    source: str,
    target: str | None = None,
    bad: str | None = None,
    name: str | None = None,
) -> Proposal:
    """Propose a schema for a table of text cells (as :func:`~.reading.read_table` gives)."""
    if len(table) == 0:
        raise InputError("no rows to infer a schema from (header only)", source=source)
    columns = [str(c) for c in table.columns]
    target_column = None
    if target is not None:
        target_column = next((c for c in columns if normalize_name(c) == normalize_name(target)), None)
        if target_column is None:
            raise InputError(
                f"no column '{target}' for --target; the columns are: {', '.join(columns)}", source=source
            )
    notes: dict[str, list[str]] = {
        "": [
            f"Proposed by `preauth schema infer` from {Path(source).name}: check every line.",
            'Categories with an order (little < moderate < rich): list them in order, kind = "ordered category".',
            "Numbers or ordered categories where risk may only grow (or fall) as the value rises: "
            'direction = "increasing" (or "decreasing"); an ordered category\'s missing level is outside the order.',
            "refer_margin: an application whose number lies further than this share of the training "
            "range outside it is referred for manual review (0 refers anything outside the range); "
            "a field may set its own.",
            "What a wrong decision costs you chooses the threshold: add a [costs] table with "
            "approve_bad (approving an applicant who turns out bad) and refuse_good (refusing one who "
            "would have repaid); without it, German Credit's 5 and 1.",
        ]
    }
    fields: list[Field] = []
    skipped: list[str] = []
    id_column: str | None = None
    for position, column in enumerate(columns):
        if column == target_column:
            continue
        cells = table[column].astype(str).str.strip()
        present = cells[~cells.str.lower().isin(_EMPTY)]
        if id_column is None and _looks_like_id(column, position, present, len(table)):
            id_column = column
            continue
        if normalize_name(column) in RESERVED:
            skipped.append(column)
            notes[""].append(f"Column {reserved_name(column)}: left out; rename it in the data to use it.")
            continue
        if present.empty:
            skipped.append(column)
            notes[""].append(f"Column '{column}' is empty in every row: left out.")
            continue
        field, field_notes = _propose_field(column, present, has_missing=len(present) < len(cells))
        if field is None:
            skipped.append(column)
            notes[""].extend(
                field_notes
                or [f"Column '{column}' has {present.nunique()} distinct texts: not a category, left out."]
            )
            continue
        fields.append(field)
        if field_notes:
            notes[column] = field_notes
    if not fields:
        raise InputError("no column could be read as an application field", source=source)
    schema_target = None
    if target_column is not None:
        schema_target, target_note = _propose_target(table[target_column], target_column, bad, source)
        notes[""].append(target_note)
    protected = tuple(f.name for f in fields if normalize_name(f.name) in PROTECTED_NAMES)
    if protected:
        notes[""].append(
            f"Protected (kept for fairness measurement, never a model input unless asked): {', '.join(protected)}."
        )
    if id_column:
        notes[""].append(f"'{id_column}' looks like an applicant id: kept as the id, not a model input.")
    elif id_column is not None:  # a header left empty: a table's saved index, as German Credit's CSV has
        notes[""].append(
            "The column with no name looks like an applicant id (a saved row index): kept as the id, "
            "not a model input."
        )
    schema = Schema(
        name=name or normalize_name(Path(source).stem) or "lender",
        fields=tuple(fields),
        target=schema_target,
        id_column=id_column or "id",
        protected=protected,
        source=source,
        refer_margin=DEFAULT_REFER_MARGIN,
    )
    return Proposal(schema, notes, skipped)


def _looks_like_id(column: str, position: int, present: pd.Series, rows: int) -> bool:
    key = normalize_name(column)
    if key in ID_ALIASES or key.endswith("_id") or (position == 0 and column.strip() == ""):
        return True
    # Distinct texts on every row (L1000, L1001, ...) name applicants; so does a first column of
    # whole numbers counting the rows (0.. or 1..), an index.
    # (no text that reads as a number: 1e20 or inf is a value, not a name)
    if (
        len(present) == rows
        and present.nunique() == rows
        and pd.to_numeric(present, errors="coerce").isna().all()
    ):
        return True
    if position == 0 and len(present) == rows and present.str.fullmatch(r"\d+").all():
        numbers = present.astype(np.int64).to_numpy()
        return bool(
            np.array_equal(numbers, np.arange(rows)) or np.array_equal(numbers, np.arange(1, rows + 1))
        )
    return False


def _propose_field(column: str, present: pd.Series, *, has_missing: bool) -> tuple[Field | None, list[str]]:
    notes: list[str] = []
    numbers = pd.to_numeric(present, errors="coerce")
    key = normalize_name(column)
    if numbers.notna().all():
        values = numbers.to_numpy(dtype=np.float64)
        # 1e400 reads as infinity, 1e20 past what a float keeps exactly: validation refuses both
        # (one value check), so the range is proposed from the others and the user told
        kept = np.isfinite(values) & (np.abs(values) <= LARGEST_NUMBER)
        if not kept.all():
            first = present.iloc[int(np.argmin(kept))]
            if not kept.any():
                return None, [
                    f"Column '{column}' holds no number preauth can keep exactly (e.g. '{first}'): left out."
                ]
            notes.append(
                f"{int((~kept).sum())} value(s) such as '{first}' are not finite or beyond "
                f"±{LARGEST_NUMBER:,}: such values are refused when read."
            )
            values = values[kept]
        whole = bool(np.all(values == np.round(values)))
        low, high = float(values.min()), float(values.max())
        span = high - low or abs(high) or 1.0
        minimum = math.floor(low - MARGIN * span)
        maximum = math.ceil(high + MARGIN * span)
        if low >= 0:
            minimum = max(minimum, 0)
        notes.append(f"Seen {low:g} to {high:g}; the range allows a margin: narrow or widen it.")
        if has_missing:
            notes.append(
                "Some rows leave it empty: confirm what a missing value means (or remove 'missing')."
            )
        # A value of the data near its middle, not the median: the mean of two middle values may
        # print as 3003.8500000000004, an example no applicant wrote.
        middle = float(np.partition(values, len(values) // 2)[len(values) // 2])
        example = int(middle) if whole else middle
        return (
            Field(
                column,
                key,
                "integer" if whole else "number",
                "",
                example,
                minimum=minimum,
                maximum=maximum,
                missing="not given" if has_missing else None,
            ),
            notes,
        )
    distinct: dict[str, str] = {}
    for value in present:
        distinct.setdefault(value.lower(), value)
    if len(distinct) > MAX_CATEGORIES:
        return None, []
    counts = present.str.lower().value_counts()
    categories = tuple(distinct[v] for v in counts.index)
    if has_missing:
        notes.append(
            "Some rows leave it empty: a missing value is read as its own level 'unknown'; "
            "confirm what it means (e.g. missing = \"no account\") or remove 'missing' to refuse such rows."
        )
    return (
        Field(
            column,
            key,
            "category",
            "",
            categories[0],
            categories=categories,
            missing="unknown" if has_missing else None,
        ),
        notes,
    )


def _propose_target(column: pd.Series, name: str, bad: str | None, source: str) -> tuple[Target, str]:
    cells = column.astype(str).str.strip()
    values = [v for v in dict.fromkeys(cells) if v.lower() not in _EMPTY]
    if bad is not None:
        chosen = [v for v in values if v.lower() == bad.strip().lower()]
        if not chosen:
            raise InputError(
                f"--bad {bad}: the column '{name}' has no such value; its values are: {', '.join(values)}",
                source=source,
            )
        how = "as given by --bad"
    else:
        lowered = {v.lower(): v for v in values}
        numeric = [v for v in values if v.isdigit()]
        pick = next((lowered[w] for w in _BAD_WORDS if w in lowered), None)
        if pick is None and sorted(numeric) == ["1", "2"]:
            pick = "2"  # the UCI German Credit coding: 1 good, 2 bad
        elif pick is None and sorted(numeric) == ["0", "1"]:
            pick = "1"
        if pick is None or len(values) > 2:
            raise InputError(
                f"which values of '{name}' mean bad risk? Say so with --bad VALUE (its values are: {', '.join(values)})",
                source=source,
            )
        chosen = [pick]
        how = "guessed; confirm it or pass --bad VALUE"
    good = tuple(v for v in values if v not in chosen)
    if not good:
        raise InputError(f"the column '{name}' has no value left to mean good risk", source=source)
    note = f"Target '{name}': bad = {', '.join(chosen)} ({how}); good = {', '.join(good)}."
    return Target(name, tuple(chosen), good, "The applicant's real repayment outcome"), note


def proposal_text(proposal: Proposal) -> str:
    from .schema import dump_schema

    return dump_schema(proposal.schema, notes=proposal.notes)
