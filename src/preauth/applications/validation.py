"""Validating a table of text cells against the schema.

Vectorised over each column's distinct values, because the same code checks a 1,000-row training
set and a 1,000,000-row scoring job (a number column of plain digits, all in range, needs not even
that: one cast). A bad row never stops the others: it becomes a :class:`Reject` with its reason,
and the caller decides whether any rejects make the run fail.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from .german import GERMAN
from .schema import (
    ID_COLUMN,
    LARGEST_NUMBER,
    MISSING_TOKENS,
    Field,
    OnUnknown,
    Schema,
)
from .values import NUMBER_PATTERN, check_category, check_number, excerpt, not_one_of

MALFORMED_ROWS = "preauth.malformed_rows"
"""Key in a table's ``attrs`` for CSV rows that could not be split into fields: row → (text, reason)."""


@dataclass(frozen=True)
class Reject:
    """A row that failed validation, with the reason in the schema's own words."""

    row: int
    column: str | None
    value: str | None
    reason: str

    def message(self, source: str | None) -> str:
        return str(InputError(self.reason, source=source, row=self.row, column=self.column))


@dataclass
class Applications:
    """Validated applications.

    ``frame`` holds the model-ready values under canonical column names (numbers as float64,
    categories as canonical strings, ``unknown`` for missing balances), indexed by the 1-based
    row number in the source. ``given`` holds the same rows as the user wrote them, under the
    user's own column names with missing values as ``None``: the ``input_data`` of a result.
    """

    frame: pd.DataFrame
    given: pd.DataFrame
    ids: pd.Series
    rejects: list[Reject]
    source: str
    columns: dict[str, str]
    schema: Schema = GERMAN
    has_ids: bool = False
    """Whether the input named an id column (results then carry each applicant's ``id``)."""

    @property
    def outcome_column(self) -> str | None:
        """The target's column name (``Risk``), or None when the schema has no target."""
        return self.schema.target.column if self.schema.target is not None else None

    @property
    def has_outcome(self) -> bool:
        return self.outcome_column is not None and self.outcome_column in self.frame.columns

    def outcome(self) -> pd.Series:
        """Per row ``bad``, ``good`` or missing: the real outcome in canonical words."""
        assert self.outcome_column is not None
        return self.frame[self.outcome_column]

    def __len__(self) -> int:
        return len(self.frame)

    def reject_messages(self) -> list[str]:
        return [r.message(self.source) for r in self.rejects]


# --------------------------------------------------------------------------------------------
# Validation


def validate(
    table: pd.DataFrame,
    *,
    source: str = "<input>",
    on_unknown: OnUnknown = "error",
    required: Iterable[str] | None = None,
    schema: Schema = GERMAN,
    first_row: int = 1,
) -> Applications:
    """Check a table of text cells against the schema; good rows become :class:`Applications`.

    ``first_row`` is the number of the table's first row in its source: a batch of a large file
    passes where it starts, so that its rows and rejects keep their numbers in the whole file.
    Raises :class:`InputError` when the table as a whole is unusable (no rows, a required column
    missing); rows with bad values are returned as rejects, never raised.
    """
    if len(table) == 0:
        raise InputError("no applications (header only)", source=source)
    columns: dict[str, str] = {}
    id_column: str | None = None
    for position, raw in enumerate(table.columns):
        name = schema.canonical_column(str(raw))
        if name is not None:
            columns[name] = str(raw)
        elif id_column is None and schema.is_id_column(str(raw), position):
            id_column = str(raw)
    needed = set(required) if required is not None else {f.name for f in schema.fields if f.required}
    for f in schema.fields:
        if f.name in needed and f.name not in columns:
            raise InputError(f"missing required column '{f.name}'", source=source)

    n = len(table)
    rows = np.arange(first_row, first_row + n)
    bad = np.zeros(n, dtype=bool)
    reasons: dict[int, tuple[str | None, str, str]] = {}
    for row, (text, reason) in table.attrs.get(MALFORMED_ROWS, {}).items():
        bad[row - 1] = True
        reasons[row - 1] = (None, text, reason)
    frame: dict[str, Any] = {}
    given: dict[str, Any] = {}

    outcome = schema.outcome
    for f in (*schema.fields, outcome) if outcome is not None else schema.fields:
        is_outcome = f is outcome
        raw_name = columns.get(f.name)
        if raw_name is None:
            if f.missing_is_unknown:
                frame[f.name] = np.full(n, f.missing, dtype=object)
            elif not is_outcome:
                frame[f.name] = np.full(n, None, dtype=object)
            continue
        if not is_outcome and not f.is_category:
            whole = _plain_whole_numbers(f, table[raw_name])
            if whole is not None:  # every value good: nothing to reject, nothing to look up
                frame[f.name] = whole.astype(np.float64)
                given[raw_name] = whole
                continue
        # Work on the distinct values of the column, then spread the verdicts back to the rows:
        # a million rows hold a few dozen distinct categories and a few thousand distinct numbers.
        uniques, codes = _distinct(table[raw_name])
        if is_outcome:
            assert schema.target is not None
            values_u, given_u, errors_u = _check_outcome(f, schema, uniques)
        elif f.is_category:
            values_u, given_u, errors_u = _check_categories(f, schema, uniques, on_unknown)
        else:
            values_u, given_u, errors_u = _check_numbers(f, uniques)
        failing = np.array([e is not None for e in errors_u], dtype=bool)
        if failing.any():
            row_fails = failing[codes]
            for i in np.flatnonzero(row_fails & ~bad):
                code = int(codes[i])
                reasons[int(i)] = (f.name, excerpt(uniques[code].strip()), str(errors_u[code]))
            bad |= row_fails
        frame[f.name] = _Spread(values_u, codes, f.is_category, ("good", "bad") if is_outcome else f.levels())
        if not is_outcome:
            given[raw_name] = _Spread(given_u, codes, f.is_category, f.categories)

    # Nearly every batch keeps every row: a slice then takes them without a copy or a mask's pass.
    keep: np.ndarray | slice = ~bad if bad.any() else slice(None)
    index = pd.Index(rows[keep], name="row")
    out = pd.DataFrame({k: _spread(v, keep) for k, v in frame.items()}, index=index)
    given_frame = pd.DataFrame({k: _spread(v, keep) for k, v in given.items()}, index=index)
    if id_column is not None:
        ids = pd.Series(table[id_column].to_numpy(dtype=object)[keep], index=index, name=ID_COLUMN)
    else:
        ids = pd.Series(rows[keep] - 1, index=index, name=ID_COLUMN)
    rejects = [
        Reject(row=int(rows[i]), column=c, value=v, reason=r) for i, (c, v, r) in sorted(reasons.items())
    ]
    # A leading unnamed column is a spreadsheet's row index, not an id worth carrying into results.
    named_id = id_column is not None and id_column.strip() != ""
    return Applications(out, given_frame, ids, rejects, source, columns, schema, named_id)


@dataclass
class _Spread:
    """Per-distinct-value results and the row → distinct-value codes that spread them to rows."""

    values: np.ndarray
    codes: np.ndarray
    categorical: bool
    levels: tuple[str, ...] = ()


def _spread(column: _Spread | np.ndarray, keep: np.ndarray | slice) -> Any:
    """The kept rows of a column; categories as pandas Categoricals, which build a million rows fast."""
    if isinstance(column, np.ndarray):
        return column[keep]
    if not column.categorical:
        return column.values[column.codes[keep]]
    categories: list[str] = list(column.levels)
    position: dict[str, int] = {c: i for i, c in enumerate(categories)}
    mapped = np.full(len(column.values), -1, dtype=np.int32)
    for k, value in enumerate(column.values):
        if value is None:
            continue
        if value not in position:
            position[value] = len(categories)
            categories.append(value)
        mapped[k] = position[value]
    # The codes are in range by construction; checking them, and the categories anew for every
    # column of every batch, was a third of the spreading.
    return pd.Categorical.from_codes(
        mapped[column.codes[keep]], dtype=_categories(tuple(categories)), validate=False
    )


@functools.lru_cache(maxsize=256)
def _categories(categories: tuple[str, ...]) -> pd.CategoricalDtype:
    """One dtype per list of categories (a field's levels, and rarely an unknown value or two)."""
    return pd.CategoricalDtype(list(categories))


def _distinct(column: pd.Series) -> tuple[list[str], np.ndarray]:
    """The column's distinct texts and, per row, the position of its text among them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pa.array(column, from_pandas=True)
    if array.type != pa.string() and array.type != pa.large_string():
        array = pc.cast(array, pa.string())
    encoded = pc.dictionary_encode(pc.fill_null(array, ""))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = pa.chunked_array(encoded.chunks).combine_chunks()
    uniques = [str(u) for u in encoded.dictionary.to_pylist()]
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    return uniques, codes


def _plain_whole_numbers(f: Field, column: pd.Series) -> np.ndarray | None:
    """A number column whose every cell is plain digits within the field's range, as int64; None
    for any other column (a sign, a blank, a decimal point, a value out of range...), which then
    takes the distinct-value checks. Cells of digits alone are numbers by every rule of
    :func:`.values.check_number` and whole, so they need no regular expression, no hashing, and
    no spreading back to the rows: one cast, one range check (numbers are most of a file's columns).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pa.array(column, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count or not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return None
    offsets = np.frombuffer(
        array.buffers()[1], np.int64 if pa.types.is_large_string(array.type) else np.int32
    )
    first, last = int(offsets[array.offset]), int(offsets[array.offset + len(array)])
    data = array.buffers()[2]
    text = np.frombuffer(data, np.uint8)[first:last] if data is not None else np.zeros(0, np.uint8)
    if len(text) and not (text.min() >= ord("0") and text.max() <= ord("9")):
        return None
    try:
        numbers = pc.cast(array, pa.int64()).to_numpy(zero_copy_only=False)  # a blank cell fails here
    except pa.ArrowInvalid:  # a blank, or more digits than an int64 holds
        return None
    if len(numbers) == 0:
        return None
    low, high = int(numbers.min()), int(numbers.max())
    if high > LARGEST_NUMBER:
        return None
    if f.positive:
        return numbers if low > 0 else None
    if f.minimum is not None and f.maximum is not None and not f.minimum <= low <= high <= f.maximum:
        return None
    return numbers


def _check_categories(
    f: Field, schema: Schema, uniques: list[str], on_unknown: OnUnknown
) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    values = np.empty(len(uniques), dtype=object)
    given = np.empty(len(uniques), dtype=object)
    errors: list[str | None] = []
    for k, raw in enumerate(uniques):
        checked = check_category(f, raw.strip(), schema, on_unknown)
        values[k], given[k] = checked.value, checked.given
        errors.append(checked.reason)
    return values, given, errors


def _check_outcome(
    f: Field, schema: Schema, uniques: list[str]
) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """The target's values read as ``bad``/``good``; an application may come without its outcome."""
    assert schema.target is not None
    values = np.empty(len(uniques), dtype=object)
    errors: list[str | None] = []
    for k, raw in enumerate(uniques):
        text = raw.strip()
        outcome = schema.target.outcome(text)
        values[k] = outcome
        if outcome is None and text.lower() not in MISSING_TOKENS:
            errors.append(not_one_of(text, f.categories))
        else:
            errors.append(None)
    return values, values.copy(), errors


_NUMBER = NUMBER_PATTERN


def _check_numbers(f: Field, uniques: list[str]) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(pa.array(uniques, type=pa.string()))
    numeric = pc.match_substring_regex(text, _NUMBER).to_numpy(zero_copy_only=False)
    parsed = pc.cast(pc.if_else(pa.array(numeric), text, "nan"), pa.float64())
    numbers = parsed.to_numpy(zero_copy_only=False).astype(np.float64)
    numbers[~numeric] = np.nan
    errors: list[str | None] = [None] * len(uniques)
    finite = np.isfinite(numbers)
    with np.errstate(invalid="ignore"):
        exact = np.abs(numbers) <= LARGEST_NUMBER
        whole = finite & (numbers == np.round(numbers))
        if f.positive:
            in_range = numbers > 0
        else:
            in_range = (numbers >= (f.minimum or 0)) & (numbers <= (f.maximum or 0))
    absent = np.zeros(len(uniques), dtype=bool)
    # Arrow screened the column; the values it did not pass get their verdict from the one check.
    for k in np.flatnonzero(~(finite & exact & in_range & (whole | (f.kind != "integer")))):
        checked = check_number(f, uniques[k].strip())
        absent[k] = checked.reason is None and checked.value is None
        errors[k] = checked.reason
    # The values as given, typed for output: whole numbers stay integers (as the original wrote them).
    safe = np.where(finite & exact, numbers, 0.0)
    given: np.ndarray = safe
    ok = np.array([e is None for e in errors], dtype=bool)
    if f.kind == "integer" or bool(np.all(whole[ok & ~absent])):
        given = safe.astype(np.int64)
    if absent.any():
        given = given.astype(object)
        given[absent] = None
    return numbers, given, errors
