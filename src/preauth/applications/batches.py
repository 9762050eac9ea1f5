"""Reading an applications file in batches, so that memory stays bounded whatever the file's size.

A batch is a table of text cells, exactly what :func:`.reading.read_table` gives for the whole
file, and the number of its first row in the file: validated with that number, its rows and
rejects are numbered as they would be had the file been read whole. CSV is cut at line ends
(a value never holds a newline), Parquet is read a record batch at a time, JSON Lines a block of
lines at a time; a JSON array or a pretty-printed object is read whole and then cut (only JSON
Lines is a format for large files).
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from ..errors import InputError
from .german import GERMAN
from .reading import (
    MALFORMED_ROWS,
    _cells,
    _not_utf8,
    check_header,
    csv_layout,
    file_kind,
    json_line,
    parse_csv,
    read_table,
    records_to_table,
)
from .schema import OnUnknown, Schema
from .validation import Applications, validate

BATCH_ROWS = 100_000
"""Rows per batch: large enough that per-batch costs vanish, small enough to bound memory."""


@dataclass(frozen=True)
class Batch:
    """Text cells of consecutive rows of a file, and the number of the first of them."""

    table: pd.DataFrame
    first_row: int


def iter_applications(
    path: Path,
    *,
    batch_rows: int = BATCH_ROWS,
    on_unknown: OnUnknown = "error",
    required: Iterable[str] | None = None,
    schema: Schema = GERMAN,
) -> Iterator[Applications]:
    """Validated applications, batch by batch; rows and rejects numbered across the whole file."""
    required = None if required is None else list(required)
    seen = False
    for batch in iter_tables(path, batch_rows=batch_rows, schema=schema):
        seen = True
        yield validate(
            batch.table,
            source=str(path),
            on_unknown=on_unknown,
            required=required,
            first_row=batch.first_row,
            schema=schema,
        )
    if not seen:
        raise InputError("no applications (header only)", source=str(path))


def iter_tables(path: Path, *, batch_rows: int = BATCH_ROWS, schema: Schema = GERMAN) -> Iterator[Batch]:
    """The file's rows as tables of text cells, ``batch_rows`` (or fewer) at a time; none is empty."""
    if batch_rows < 1:
        raise InputError(f"batch size must be at least 1 row, got {batch_rows}")
    kind = file_kind(path)
    if kind == "parquet":
        batches = _parquet_batches(path, batch_rows, schema)
    elif kind == "json":
        whole = not _is_json_lines(path)
        batches = _whole(path, batch_rows, schema) if whole else _json_lines_batches(path, batch_rows, schema)
    else:
        batches = _csv_batches(path, batch_rows, schema)
    try:
        yield from (b for b in batches if len(b.table))
    except UnicodeDecodeError:
        raise _not_utf8(path, csv_rows=kind == "csv") from None


def _csv_batches(path: Path, batch_rows: int, schema: Schema) -> Iterator[Batch]:
    delimiter, header, start = csv_layout(path, schema)
    first_row = 1
    with path.open("rb") as handle:
        handle.seek(start)
        for block in _line_blocks(handle, batch_rows):
            if not block or block.isspace():  # not ``strip()``, which copies the block to say so
                continue
            table = parse_csv(io.BytesIO(block), header, delimiter, path=path, skip_rows=0)
            yield Batch(table, first_row)
            first_row += len(table)


def _line_blocks(handle: BinaryIO, lines: int, read_size: int = 1 << 22) -> Iterator[bytes]:
    """The rest of ``handle`` in blocks of ``lines`` whole lines (the last may have fewer).

    The line ends are found by numpy over large reads, not by iterating lines in Python: on a
    million rows that loop cost as much as parsing them. When blocks are large a read holds one
    block's end or none: its line ends are counted and only that one is looked for (listing them
    all was half of this function's time).
    """
    import numpy as np

    carry: list[bytes] = []  # the current block's start, from earlier reads
    counted = 0  # line ends in ``carry``
    while chunk := handle.read(read_size):
        is_end = np.frombuffer(chunk, dtype=np.uint8) == 10
        ends = int(np.count_nonzero(is_end))
        cuts: list[int] = []
        if lines <= counted + ends < 2 * lines:
            cuts = [_nth_true(is_end, lines - counted - 1) + 1]
        elif counted + ends >= 2 * lines:
            cuts = (np.flatnonzero(is_end)[lines - counted - 1 :: lines] + 1).tolist()
        start = 0
        for cut in cuts:
            yield b"".join([*carry, chunk[start:cut]])
            carry, start = [], cut
        carry.append(chunk[start:])
        counted = (counted + ends) % lines
    if any(carry):
        yield b"".join(carry)


def _nth_true(mask: Any, n: int) -> int:
    """Where the ``n``-th (from 0) true value of a boolean array is: halving by counts, which are
    fast, down to a stretch short enough to list the positions of."""
    import numpy as np

    low, high = 0, len(mask)
    while high - low > 1 << 16:
        middle = (low + high) // 2
        left = int(np.count_nonzero(mask[low:middle]))
        if n < left:
            high = middle
        else:
            n -= left
            low = middle
    return low + int(np.flatnonzero(mask[low:high])[n])


def _parquet_batches(path: Path, batch_rows: int, schema: Schema) -> Iterator[Batch]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several unrelated types for a broken file
        raise InputError(f"not a readable Parquet file ({error})", source=str(path)) from None
    check_header(parquet.schema_arrow.names, str(path), schema)
    first_row = 1
    for record_batch in parquet.iter_batches(batch_size=batch_rows):
        table = _cells(record_batch.to_pandas())
        yield Batch(table, first_row)
        first_row += len(table)


def _is_json_lines(path: Path) -> bool:
    """JSON Lines if the first line is a whole JSON object; an array or an indented object is not."""
    with path.open("rb") as handle:
        first = handle.readline().lstrip(b"\xef\xbb\xbf").strip()
    if not first.startswith(b"{"):
        return False
    try:
        json.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return False  # read whole, where the reader names what is wrong with it
    return True


def _json_lines_batches(path: Path, batch_rows: int, schema: Schema) -> Iterator[Batch]:
    # A first pass learns every key (a later line may bring a column the first ones lack); the
    # second builds the batches. A bad line is a rejected row, as in a CSV; the others are read.
    names: list[str] = []
    known: set[str] = set()
    count = good = 0
    first_bad: tuple[int, str] | None = None
    for record, bad in _json_lines(path):
        count += 1
        if bad is not None:
            first_bad = first_bad or (count, bad[1])
            continue
        good += 1
        for key in record:
            if key not in known:
                known.add(key)
                names.append(key)
    if count == 0:
        raise InputError("no applications (empty list)", source=str(path))
    if good == 0 and first_bad is not None:
        raise InputError(first_bad[1], source=str(path), row=first_bad[0])
    check_header(names, str(path), schema)
    records = _json_lines(path)
    first_row = 1
    while chunk := list(itertools.islice(records, batch_rows)):
        table = records_to_table([record for record, _ in chunk], str(path), schema)
        table = table.reindex(columns=names, fill_value="")
        malformed = {i: bad for i, (_, bad) in enumerate(chunk, start=1) if bad is not None}
        if malformed:
            table.attrs[MALFORMED_ROWS] = malformed
        yield Batch(table, first_row)
        first_row += len(table)


def _json_lines(path: Path) -> Iterator[tuple[dict[str, Any], tuple[str, str] | None]]:
    """Each line's application object (a results file's ``input_data``), numbered as ``read_table``
    does; a line that is not one is an empty object with its (excerpt, reason)."""
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            line = raw.decode("utf-8-sig" if line_number == 1 else "utf-8")
            if not line.strip():
                continue
            yield json_line(line, line_number)


def _whole(path: Path, batch_rows: int, schema: Schema) -> Iterator[Batch]:
    table = read_table(path, schema)
    for start in range(0, len(table), batch_rows):
        yield Batch(table.iloc[start : start + batch_rows].reset_index(drop=True), start + 1)
