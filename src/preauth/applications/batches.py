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
from typing import Any

import pandas as pd

from ..errors import InputError
from .reading import (
    _cells,
    _not_utf8,
    check_header,
    csv_layout,
    file_kind,
    parse_csv,
    read_table,
    records_to_table,
)
from .schema import OnUnknown
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
) -> Iterator[Applications]:
    """Validated applications, batch by batch; rows and rejects numbered across the whole file."""
    required = None if required is None else list(required)
    seen = False
    for batch in iter_tables(path, batch_rows=batch_rows):
        seen = True
        yield validate(
            batch.table, source=str(path), on_unknown=on_unknown, required=required, first_row=batch.first_row
        )
    if not seen:
        raise InputError("no applications (header only)", source=str(path))


def iter_tables(path: Path, *, batch_rows: int = BATCH_ROWS) -> Iterator[Batch]:
    """The file's rows as tables of text cells, ``batch_rows`` (or fewer) at a time; none is empty."""
    if batch_rows < 1:
        raise InputError(f"batch size must be at least 1 row, got {batch_rows}")
    kind = file_kind(path)
    if kind == "parquet":
        batches = _parquet_batches(path, batch_rows)
    elif kind == "json":
        batches = _json_lines_batches(path, batch_rows) if _is_json_lines(path) else _whole(path, batch_rows)
    else:
        batches = _csv_batches(path, batch_rows)
    try:
        yield from (b for b in batches if len(b.table))
    except UnicodeDecodeError:
        raise _not_utf8(path, csv_rows=kind == "csv") from None


def _csv_batches(path: Path, batch_rows: int) -> Iterator[Batch]:
    delimiter, header, start = csv_layout(path)
    first_row = 1
    with path.open("rb") as handle:
        handle.seek(start)
        while lines := list(itertools.islice(handle, batch_rows)):
            block = b"".join(lines)
            if not block.strip():
                continue
            table = parse_csv(io.BytesIO(block), header, delimiter, path=path, skip_rows=0)
            yield Batch(table, first_row)
            first_row += len(table)


def _parquet_batches(path: Path, batch_rows: int) -> Iterator[Batch]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several unrelated types for a broken file
        raise InputError(f"not a readable Parquet file ({error})", source=str(path)) from None
    check_header(parquet.schema_arrow.names, str(path))
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
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True


def _json_lines_batches(path: Path, batch_rows: int) -> Iterator[Batch]:
    # A first pass learns every key (a later line may bring a column the first ones lack) and
    # refuses a bad line before anything is written; the second builds the batches.
    names: list[str] = []
    known: set[str] = set()
    count = 0
    for record in _json_lines(path):
        count += 1
        for key in record:
            if key not in known:
                known.add(key)
                names.append(key)
    if count == 0:
        raise InputError("no applications (empty list)", source=str(path))
    check_header(names, str(path))
    records = _json_lines(path)
    first_row = 1
    while chunk := list(itertools.islice(records, batch_rows)):
        table = records_to_table(chunk, str(path))
        table = table.reindex(columns=names, fill_value="")
        yield Batch(table, first_row)
        first_row += len(table)


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Each line's application object (a results file's ``input_data``), numbered as ``read_table`` does."""
    source = str(path)
    record_number = 0
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            line = raw.decode("utf-8-sig" if line_number == 1 else "utf-8")
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"invalid JSON ({error.msg})", source=source, row=line_number) from None
            record_number += 1
            if isinstance(record, dict) and isinstance(record.get("input_data"), dict):
                record = record["input_data"]
            if not isinstance(record, dict):
                raise InputError("expected an application object", source=source, row=record_number)
            yield record


def _whole(path: Path, batch_rows: int) -> Iterator[Batch]:
    table = read_table(path)
    for start in range(0, len(table), batch_rows):
        yield Batch(table.iloc[start : start + batch_rows].reset_index(drop=True), start + 1)
