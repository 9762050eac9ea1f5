"""The text of a cell, whatever the format gave, one value at a time or a whole typed column.

:func:`cell_text` is the one rule for the text of a cell; a Python call per cell is too
slow for a million rows of Parquet or JSON Lines (it was most of ``preauth predict``'s time on
them). Here the rule is applied with Arrow and numpy to columns of the types a lender's file nearly
always has: strings, integers, floats, booleans, nulls. Anything else (dates, decimals, bytes,
nested values, a pandas extension type...) is not guessed at: the callers keep ``cell_text`` for
it, decided per column (Parquet) or per block of lines (JSON Lines), so an unusual file is read
exactly as before, only not faster. The differential tests compare both paths on hostile files.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .schema import LARGEST_NUMBER


def cell_text(value: Any) -> str:
    """The text of one cell, whatever the format gave: the one rule for files and requests alike.

    Missing is the empty string; a whole float is written without its ``.0`` (JSON and Parquet give
    ``35.0`` for ``35``), unless it is too large to be whole exactly, where ``repr`` keeps it short.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return ""
        if number.is_integer() and abs(number) <= LARGEST_NUMBER:
            return f"{number:.0f}"
        return repr(number)
    return str(value)


def table_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell of a frame as text, one ``cell_text`` call per cell: what is not worth a faster path."""
    out = {str(name): frame[name].map(cell_text).astype(object) for name in frame.columns}
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------
# Typed columns

_SHORT_FLOATS = (1e-4, 1e9)
"""Arrow writes a float as ``repr`` does (shortest round trip, fixed notation) inside this range
of magnitudes; outside it their choice of exponent notation differs (``1e-7``/``1e-07``)."""


def arrow_cells(array: Any, *, nulls_make_floats: bool) -> Any | None:
    """The text of every cell of an Arrow array as ``cell_text`` gives it, or None for a type the
    fast path does not know (the caller then asks ``cell_text``).

    ``nulls_make_floats``: pandas turns an integer column with a missing value into floats, so a
    Parquet integer past 2**53 in such a column reads as a float; JSON keeps each integer.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if pa.types.is_null(kind):
        return pa.array(np.full(len(array), "", dtype=object), pa.string())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pc.fill_null(pc.cast(array, pa.string()), "")
    if pa.types.is_boolean(kind):
        return pc.fill_null(pc.if_else(array, "True", "False"), "")
    if pa.types.is_integer(kind):
        if array.null_count and nulls_make_floats:
            return float_cells(pc.cast(array, pa.float64(), safe=False))
        return pc.fill_null(pc.cast(array, pa.string()), "")
    if pa.types.is_float32(kind) or pa.types.is_float64(kind):
        return float_cells(pc.cast(array, pa.float64()))
    return None


def float_cells(array: Any) -> Any:
    """Floats as ``cell_text`` writes them: missing and NaN empty, a whole number within 2**53
    without ``.0`` (``-0`` for negative zero), any other as ``repr`` (Arrow's text where it is the
    same, Python's for the few values outside :data:`_SHORT_FLOATS`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = array.to_numpy(zero_copy_only=False)  # a null is NaN here
    with np.errstate(invalid="ignore"):
        size = np.abs(values)
        whole = (values == np.floor(values)) & (size <= LARGEST_NUMBER)
        short = ~whole & (size >= _SHORT_FLOATS[0]) & (size < _SHORT_FLOATS[1])
    digits = pc.cast(pa.array(np.where(whole, values, 0).astype(np.int64)), pa.string())
    text = pc.if_else(pa.array(whole), digits, pc.cast(pa.array(np.where(short, values, 0.5)), pa.string()))
    other = ~(whole | short)
    negative_zero = whole & (values == 0) & np.signbit(values)
    odd = np.flatnonzero(other | negative_zero)
    if len(odd) == 0:
        return text
    replacements = [cell_text(float(v)) for v in values[odd]]
    mask = np.zeros(len(values), dtype=bool)
    mask[odd] = True
    return pc.replace_with_mask(text, pa.array(mask), pa.array(replacements, pa.string()))


# --------------------------------------------------------------------------------------------
# Parquet


def parquet_cells(data: Any) -> pd.DataFrame:
    """A Parquet record batch (or table) as text cells, as ``cell_text`` over ``to_pandas()`` gives.

    What pandas makes of a column decides its text (pandas metadata may restore an extension type
    whose missing value is ``<NA>``, an index, a column name that is not a string...), so the
    columns and their pandas types are taken from an empty slice: a column that would be a plain
    numpy or string column is converted in Arrow, any other through pandas and ``cell_text``.
    """
    shape = data.slice(0, 0).to_pandas()
    names = [str(name) for name in shape.columns]
    fields = data.schema.names
    if len(set(names)) != len(names) or len(set(fields)) != len(fields) or not set(names) <= set(fields):
        return table_cells(data.to_pandas())  # duplicate or renamed columns: not worth a second path
    columns: dict[str, Any] = {}
    whole: pd.DataFrame | None = None
    for label, name in zip(shape.columns, names, strict=True):
        dtype = shape[label].dtype
        # pandas' own ``str`` columns hold NaN for a missing value ("" to cell_text); its
        # ``string`` columns hold pd.NA, whose text is "<NA>".
        plain = (
            isinstance(dtype, np.dtype)
            and dtype.kind in "iufbO"
            or (isinstance(dtype, pd.StringDtype) and dtype.na_value is not pd.NA)
        )
        cells = arrow_cells(data.column(name), nulls_make_floats=True) if plain else None
        if cells is not None:
            columns[name] = cells.to_pandas()
        else:
            whole = data.to_pandas() if whole is None else whole
            columns[name] = pd.Series(whole[label].map(cell_text).astype(object).to_numpy(), dtype=object)
    return pd.DataFrame(columns) if columns else table_cells(shape)


# --------------------------------------------------------------------------------------------
# JSON Lines

_NESTING = 32
"""Deepest value read by Arrow (a results file's fields beside ``input_data`` may nest); deeper goes
to ``json``, which refuses past about a thousand levels (``TOO_DEEP``)."""


def json_cells(table: Any) -> tuple[list[str], list[Any]] | None:
    """Arrow's reading of a block of JSON Lines (one row per line, every line an object) as column
    names and text cells; None unless every value is one ``json`` reads alike and ``cell_text``
    writes as Arrow's types say: scalars (a results file's ``input_data`` objects unwrapped), and
    floats that JSON did not write as integers (no ``-0``, nothing past 2**53, no NaN token).
    """
    import pyarrow as pa

    names, arrays = table.column_names, table.columns
    if "input_data" in names:
        wrapper = table.column("input_data")
        if pa.types.is_struct(wrapper.type):
            if wrapper.null_count:
                return None  # a line whose wrapper is not an object is not unwrapped
            struct = wrapper.combine_chunks()
            names = [wrapper.type.field(i).name for i in range(wrapper.type.num_fields)]
            arrays = [struct.field(i) for i in range(len(names))]
    cells = []
    for array in arrays:
        text = arrow_cells(array, nulls_make_floats=False) if _json_scalars(array) else None
        if text is None:
            return None
        cells.append(text)
    return list(names), cells


def _json_scalars(array: Any) -> bool:
    """Whether Arrow's column holds values ``json`` reads the same way: a float column may hold
    integers (``-0`` is ``0`` to ``json``, and one past 2**53 stays exact), and NaN was a token."""
    import pyarrow as pa

    kind = array.type
    if pa.types.is_float64(kind):
        values = array.to_numpy(zero_copy_only=False)
        present = values[~np.isnan(values)] if array.null_count else values
        if len(present) != len(values) - array.null_count or np.isnan(present).any():
            return False
        return not len(present) or (
            np.abs(present).max() <= LARGEST_NUMBER and not np.signbit(present[present == 0]).any()
        )
    return any(
        check(kind)
        for check in (pa.types.is_null, pa.types.is_string, pa.types.is_boolean, pa.types.is_int64)
    )


def too_deep(kind: Any) -> bool:
    """Whether a type Arrow read from JSON nests deeper than :data:`_NESTING` (looked at without
    recursion: Arrow reads thousands of levels)."""
    import pyarrow as pa

    stack = [(kind, 0)]
    while stack:
        kind, depth = stack.pop()
        if depth > _NESTING:
            return True
        if pa.types.is_struct(kind):
            stack.extend((field.type, depth + 1) for field in kind)
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            stack.append((kind.value_type, depth + 1))
    return False


def timestamps_as_text(kind: Any) -> Any:
    """The type with every timestamp Arrow guessed from a JSON string made a string again."""
    import pyarrow as pa

    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return pa.string()
    if pa.types.is_struct(kind):
        return pa.struct([f.with_type(timestamps_as_text(f.type)) for f in kind])
    if pa.types.is_list(kind):
        return pa.list_(kind.value_field.with_type(timestamps_as_text(kind.value_type)))
    return kind
