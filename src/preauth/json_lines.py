"""JSON Lines from an Arrow table, built a column at a time in native code: the results files' writer.

A generic JSON writer (Polars' ``write_ndjson``, ``orjson`` on a dict per row) visits every value of
every row and formats it afresh (Polars: 0.8 to 1.3 s of CPU per million results, on threads of its
own, against about 1.7 s for XGBoost to score them). Here each column becomes JSON text as a whole
instead (0.7 to 0.75 s per million results, the kernel's copy of the 330 MB into the file included):

* a column with few distinct values (a category, a bool, a small range of whole numbers, the
  timestamp, the keys between values) is a short list of texts, each formatted and escaped once,
  and per row the position of its text in the list. Neighbouring such columns are merged into one
  list of their combined texts (up to :data:`LEVELS`), so that ``"Sex":"male","Job":2,"Housing":
  "own"`` is picked whole for each row, by one ``take``;
* the others (probabilities, amounts, ids) are cast to text in one call each;
* one ``take`` then gathers each row's pieces in order, and the result's data buffer is the
  file's bytes: no per-row Python object. The results file takes them around the page cache
  (:class:`.files.DirectFile`): the kernel's copy into fresh pages of its own was half of that
  0.7 s on our virtual machine; building the text alone is about 0.36 s per million results.

What a reader parses is what ``json.dumps`` of the row would give: numbers as Polars and orjson
write them (shortest text that reads back to the same float, whole floats with ``.0``; NaN and
infinities as ``null``), strings with ``"``, ``\\`` and control characters escaped, other characters as UTF-8.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

LEVELS = 4096
"""Most texts a run of few-valued columns is merged into (their distinct values multiplied)."""

ROWS = 100_000
"""Rows joined at a time: bounds the joined text (and keeps its 32-bit offsets far from overflowing)."""

NULL = "null"


@dataclass
class _Part:
    """A piece of every line: a few texts and each row's pick among them, or each row's own text.

    ``codes`` is None when every row picks the first (and only) text: a key, a constant column.
    """

    levels: list[str] | None = None
    codes: np.ndarray | None = None
    texts: Any = None  # pa.StringArray, when the values are too many to list

    @property
    def few(self) -> bool:
        return self.texts is None


def json_lines(table: Any, *, raw: Collection[str] = (), end: str = "\n") -> Iterator[Any]:
    """Each row of ``table`` as a JSON object followed by ``end``: buffers of whole lines, in order.

    ``raw`` names string columns that already hold JSON text (the reasons): written as they are.
    """
    for start in range(0, table.num_rows, ROWS):
        chunk = table.slice(start, ROWS)
        parts = [_Part(["{"])]
        for i, (name, column) in enumerate(zip(chunk.column_names, chunk.columns, strict=True)):
            parts.append(_Part([("," if i else "") + _key(name)]))
            array = column.combine_chunks()
            parts += [_Part(texts=_text(array))] if name in raw else _value_parts(array)
        parts.append(_Part(["}" + end]))
        yield _text_buffer(_joined(parts, chunk.num_rows))


def _key(name: str) -> str:
    return orjson.dumps(name).decode() + ":"


def _value_parts(array: Any) -> list[_Part]:
    """The JSON text of a column's values, as parts (a struct is a nested object: several parts)."""
    kind = array.type
    if pa.types.is_struct(kind) and not array.null_count:
        parts = [_Part(["{"])]
        for i, child in enumerate(array.flatten()):
            parts.append(_Part([("," if i else "") + _key(kind.field(i).name)]))
            parts += _value_parts(child)
        return [*parts, _Part(["}"])]
    if pa.types.is_dictionary(kind):
        return [_picked(_quoted_all(array.dictionary), array.indices)]
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        encoded = pc.dictionary_encode(array)
        if len(encoded.dictionary) <= LEVELS:
            return [_picked(_quoted_all(encoded.dictionary), encoded.indices)]
        return [_Part(texts=pc.fill_null(_quoted(_text(array)), NULL))]
    if pa.types.is_boolean(kind):
        return [_picked(["false", "true"], pc.cast(array, pa.int8()))]
    if pa.types.is_integer(kind):
        return [_integers(array)]
    if pa.types.is_floating(kind):
        return [_Part(texts=_floats(array))]
    if pa.types.is_null(kind):
        return [_Part([NULL])]
    return [_Part(texts=pa.array([orjson.dumps(v).decode() for v in array.to_pylist()], pa.string()))]


def _picked(levels: list[str], indices: Any) -> _Part:
    """Rows picking among ``levels`` by ``indices`` (a missing index picks ``null``)."""
    if indices.null_count:
        indices = pc.fill_null(indices, len(levels))
        levels = [*levels, NULL]
    codes = indices.to_numpy(zero_copy_only=False)
    if len(levels) > LEVELS:
        return _Part(texts=pa.array(levels, pa.string()).take(codes))
    return _Part(levels, codes.astype(np.int32, copy=False))


def _integers(array: Any) -> _Part:
    """Whole numbers: a list of texts when they span a short range (ages, months, codes), else cast."""
    bounds = pc.min_max(array)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is None:
        return _Part([NULL], np.zeros(len(array), np.int32)) if len(array) else _Part([NULL])
    if high - low < LEVELS and high < 2**63:
        offsets = pc.subtract(pc.cast(array, pa.int64()), pa.scalar(low, pa.int64()))
        return _picked([str(v) for v in range(low, high + 1)], offsets)
    return _Part(texts=pc.fill_null(pc.cast(array, pa.string()), NULL))


def _floats(array: Any) -> Any:
    """Floats as JSON numbers: the shortest text that reads back to the same float (``3.0`` for a
    whole one), NaN, infinities and missing values as ``null``.

    orjson formats the whole column in one call (a NumPy array: native code, no Python float per
    value) into one JSON array, ``[0.12,3.0,null]``; its values are cut out of that text at the
    commas, which a number never holds. As fast as a Polars cast to text, and ``predict`` no
    longer imports Polars (0.15–0.2 s of its start-up).
    """
    values = np.ascontiguousarray(array.to_numpy(zero_copy_only=False))  # a missing value: NaN
    if not len(values):
        return pa.array([], pa.string())
    listed = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)
    data = np.frombuffer(listed, np.uint8)[1:-1]  # without the brackets
    commas = np.flatnonzero(data == ord(","))
    # value i runs from after comma i-1 to comma i; with the commas taken out, i fewer bytes before it
    offsets = np.empty(len(values) + 1, np.int64)
    offsets[0] = 0
    offsets[1:-1] = commas - np.arange(len(commas))
    offsets[-1] = len(data) - len(commas)
    digits = data[data != ord(",")]
    if offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(
            len(values), pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(digits)
        )
    return pa.LargeStringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(digits))


_ESCAPES = [("\\", "\\\\"), ('"', '\\"')]
_CONTROL = {code: f"\\u{code:04x}" for code in range(0x20)}


def _quoted(strings: Any) -> Any:
    """Each string as a JSON string: quoted, with ``\\``, ``"`` and control characters escaped.

    Which escapes are needed is read off the bytes first, so that clean text (nearly all of it)
    is only wrapped in quotes; UTF-8 never uses bytes below 0x20 but for the control characters.
    """
    data = strings.buffers()[2]
    present = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    for char, escape in _ESCAPES:
        if (present == ord(char)).any():
            strings = pc.replace_substring(strings, char, escape)
    for code in np.unique(present[present < 0x20]):
        strings = pc.replace_substring(strings, chr(code), _CONTROL[int(code)])
    return pc.binary_join_element_wise('"', strings, '"', "")


def _quoted_all(strings: Any) -> list[str]:
    """A short list of strings (a dictionary's levels) as JSON strings, by the one escaping rule."""
    return [str(text) for text in pc.fill_null(_quoted(_text(strings)), NULL).to_pylist()]


def _text(array: Any) -> Any:
    return array.cast(pa.string()) if not pa.types.is_string(array.type) else array


def _joined(parts: list[_Part], rows: int) -> Any:
    """Every row's line: its text of each part, end to end, by one ``take``.

    The texts of all parts go into one array (a few-valued part's list, another part's text per
    row); each row's positions in it, part after part and row after row, are what one ``take``
    gathers, so that the result's data buffer is the lines end to end. A join of one array per
    part copies every picked text twice: 0.24 s of CPU per million rows against 0.18 s.
    """
    runs = _merged_runs(parts)
    texts: list[Any] = []
    # 32-bit positions when they fit (always, but for tables thousands of columns wide): half the
    # memory to fill and for the take to read, 1.5 ms of a 100,000-row chunk's 13.
    count = sum(rows if part.texts is not None else len(part.levels or ()) for part in runs)
    positions = np.empty((rows, len(runs)), np.int32 if count < 2**31 else np.int64)
    start = 0
    for k, part in enumerate(runs):
        if part.few:
            assert part.levels is not None
            texts.append(pa.array(part.levels, pa.string()))
            positions[:, k] = start if part.codes is None else start + part.codes
            start += len(part.levels)
        else:
            texts.append(part.texts)
            positions[:, k] = np.arange(start, start + rows)
            start += rows
    return pa.concat_arrays(texts).take(positions.ravel())


def _merged_runs(parts: list[_Part]) -> list[_Part]:
    """The parts, each run of neighbouring few-valued ones merged into one (up to LEVELS texts)."""
    runs: list[_Part] = []
    for part in parts:
        last = runs[-1] if runs else None
        if (
            last is not None
            and last.few
            and part.few
            and len(last.levels or ()) * len(part.levels or ()) <= LEVELS
        ):
            runs[-1] = _merged(last, part)
        else:
            runs.append(part)
    return runs


def _merged(first: _Part, second: _Part) -> _Part:
    """Two neighbouring few-valued parts as one: every pair of their texts, picked by combined codes."""
    assert first.levels is not None and second.levels is not None
    levels = [a + b for a in first.levels for b in second.levels]
    if first.codes is None and second.codes is None:
        return _Part(levels)
    codes = np.zeros(1, np.int32) if first.codes is None else first.codes * np.int32(len(second.levels))
    return _Part(levels, codes + (0 if second.codes is None else second.codes))


def _text_buffer(lines: Any) -> Any:
    """The bytes of a string array's values, end to end (a slice of its data buffer, not a copy)."""
    if not len(lines):
        return b""
    offsets = np.frombuffer(lines.buffers()[1], np.int32)[lines.offset : lines.offset + len(lines) + 1]
    return lines.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
