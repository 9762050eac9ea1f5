"""Reading an applications file in batches, so that memory stays bounded whatever the file's size.

A batch is a table of text cells, exactly what :func:`.reading.read_table` gives for the whole
file, and the number of its first row in the file: validated with that number, its rows and
rejects are numbered as they would be had the file been read whole. CSV is cut at line ends
(a value never holds a newline), Parquet is read a record batch at a time, JSON Lines a block of
lines at a time, a JSON array a read's whole elements at a time (:mod:`.json_array`; each element
made a line of JSON Lines), all into text cells a column at a time in Arrow where :mod:`.cells`
can, a cell at a time where it cannot. Only a pretty-printed object (one application) is read
whole and then cut.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from ..errors import InputError
from .cells import json_cells, parquet_cells, timestamps_as_text, too_deep
from .german import GERMAN
from .json_array import Piece, array_pieces, array_start, element_lines, element_values
from .reading import (
    MALFORMED_ROWS,
    TOO_DEEP,
    _is_utf8,
    _not_utf8,
    application_object,
    check_header,
    csv_layout,
    file_kind,
    json_line,
    objects_table,
    parse_csv,
    read_table,
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
    elif kind == "json" and (start := array_start(path)) is not None:  # before reading a first line:
        batches = _array_batches(path, start, batch_rows, schema)  # a results file's is all of it
    elif kind == "json" and _is_json_lines(path):
        batches = _json_lines_batches(path, batch_rows, schema)
    elif kind == "json":
        batches = _whole(path, batch_rows, schema)
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
        for block in _line_blocks(handle, batch_rows, quoted=True):
            if not block or block.isspace():  # not ``strip()``, which copies the block to say so
                continue
            table = parse_csv(io.BytesIO(block), header, delimiter, path=path, skip_rows=0)
            yield Batch(table, first_row)
            first_row += len(table)


def _line_blocks(
    handle: BinaryIO, lines: int, read_size: int = 1 << 22, *, quoted: bool = False
) -> Iterator[bytes]:
    """The rest of ``handle`` in blocks of ``lines`` whole lines (the last may have fewer); with
    ``quoted`` (CSV), whole rows: a line end inside a quoted value does not end a block."""
    carry: list[bytes] = []  # the current block's start, from earlier reads
    for chunk, cuts in chunk_cuts(handle, lines, read_size, quoted=quoted):
        start = 0
        for cut in cuts:
            yield b"".join([*carry, chunk[start:cut]])
            carry, start = [], cut
        carry.append(chunk[start:])
    if any(carry):
        yield b"".join(carry)


OPEN_QUOTE_LINES = 10_000
"""Line ends in a row past which a quote is taken as never closing (see :func:`chunk_cuts`)."""


def chunk_cuts(
    handle: BinaryIO, lines: int, read_size: int = 1 << 22, *, quoted: bool = False
) -> Iterator[tuple[bytes, list[int]]]:
    """Each read of ``handle`` with where in it a block of ``lines`` rows ends (after a line end).

    The line ends are found by numpy over large reads, not by iterating lines in Python: on a
    million rows that loop cost as much as parsing them. When blocks are large a read holds one
    block's end or none: its line ends are counted and only that one is looked for (listing them
    all was half of this function's time).

    With ``quoted`` a line end counts only outside quotes (:func:`csv_row_ends`): a value may hold
    a newline, and a block cut inside it would read the row's start as a whole row and its end as
    another. A quote that never closes (a stray ``5"`` in an unquoted value, which the parser
    reads as it is) would make one block of the rest of the file: once more than
    :data:`OPEN_QUOTE_LINES` line ends pass without a row end, every line end counts, as without
    ``quoted``.
    """
    counted = 0  # row ends in the current block so far (before this read)
    inside = False  # whether the current read starts inside a quoted value
    open_lines = 0  # line ends since the last row end
    while chunk := handle.read(read_size):
        raw = np.frombuffer(chunk, dtype=np.uint8) == 10
        is_end = raw
        if quoted and (inside or b'"' in chunk):  # ``in``: memchr, a fraction of a numpy pass
            is_end, inside = csv_row_ends(chunk, raw, inside)
            last = len(is_end) - 1 - int(np.argmax(is_end[::-1])) if is_end.any() else -1
            open_lines = (open_lines if last < 0 else 0) + int(np.count_nonzero(raw[last + 1 :]))
            if open_lines > OPEN_QUOTE_LINES:
                quoted, is_end = False, raw
        elif quoted and b"\n" in chunk:
            open_lines = 0  # no quote: its last line end ends a row, and none come after it
        ends = int(np.count_nonzero(is_end))
        cuts: list[int] = []
        if lines <= counted + ends < 2 * lines:
            cuts = [_nth_true(is_end, lines - counted - 1) + 1]
        elif counted + ends >= 2 * lines:
            cuts = (np.flatnonzero(is_end)[lines - counted - 1 :: lines] + 1).tolist()
        yield chunk, cuts
        counted = (counted + ends) % lines


def csv_row_ends(chunk: bytes, line_ends: np.ndarray, inside: bool) -> tuple[np.ndarray, bool]:
    """Which of a read's line ends end a CSV row (those outside quotes), and whether the read ends
    inside a quoted value. A quote opens or closes a quoted value, and a doubled one inside it
    counts twice, so a line end is inside a value exactly when an odd number of quotes come before
    it (in a file written by Arrow, pandas or a spreadsheet)."""
    quotes = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == ord('"'))
    if not len(quotes):  # a read wholly inside a quoted value, or wholly outside any
        return (np.zeros_like(line_ends) if inside else line_ends), inside
    positions = np.flatnonzero(line_ends)
    outside = (np.searchsorted(quotes, positions) + inside) % 2 == 0
    ends = np.zeros_like(line_ends)
    ends[positions[outside]] = True
    return ends, bool((len(quotes) + inside) % 2)


def _nth_true(mask: Any, n: int) -> int:
    """Where the ``n``-th (from 0) true value of a boolean array is: halving by counts, which are
    fast, down to a stretch short enough to list the positions of."""

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
        table = parquet_cells(record_batch)
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
    source = str(path)
    names = _first_pass(*_json_lines_keys(path, batch_rows), source, schema)
    if not names:
        return  # every object empty: no cells to validate, as when the file is read whole
    parts = (
        _json_lines_cells(block, line, names, source, schema)
        for block, line in _json_blocks(path, batch_rows)
    )
    yield from _batched(parts, batch_rows)


def _first_pass(
    names: list[str], count: int, good: int, first_bad: tuple[int, str] | None, source: str, schema: Schema
) -> list[str]:
    """The keys a first pass found, once it is known the file is worth a second: refused here,
    before anything is written, with no application at all, or none that is one."""
    if count == 0:
        raise InputError("no applications (empty list)", source=source)
    if good == 0 and first_bad is not None:
        raise InputError(first_bad[1], source=source, row=first_bad[0])
    check_header(names, source, schema)
    return names


def _batched(parts: Iterable[_Cells], batch_rows: int) -> Iterator[Batch]:
    """Consecutive parts' rows in batches of ``batch_rows`` applications, as validation types them
    (a float column's given values stay integers if the batch's are whole): a block of JSON Lines
    with blank lines has fewer rows, a piece of a JSON array any number."""
    held: list[_Cells] = []  # rows read and not yet in a batch
    first_row = 1
    for part in parts:
        held.append(part)
        while sum(part.rows for part in held) >= batch_rows:
            batch, held = _take(held, batch_rows)
            yield Batch(batch.frame(), first_row)
            first_row += batch.rows
    while held:
        batch, held = _take(held, batch_rows)
        yield Batch(batch.frame(), first_row)
        first_row += batch.rows


def _array_batches(path: Path, start: int, batch_rows: int, schema: Schema) -> Iterator[Batch]:
    # As JSON Lines: a first pass learns every key and refuses the file (before anything is
    # written) where reading it whole refuses it, the second builds the batches.
    source = str(path)
    try:
        keys = _array_keys(path, start)
    except InputError:
        if not _is_utf8(path):  # the whole-file reader decodes the text before it parses it
            raise _not_utf8(path, csv_rows=False) from None
        raise
    names = _first_pass(*keys, source, schema)
    if not names:
        return  # every object empty: no cells to validate, as when the file is read whole
    parts = (_piece_cells(piece, names, path, start, schema) for piece in array_pieces(path, start))
    yield from _batched(parts, batch_rows)


def _array_keys(path: Path, start: int) -> tuple[list[str], int, int, tuple[int, str] | None]:
    """As :func:`_json_lines_keys`, for the elements of a JSON array."""

    def parts() -> Iterator[tuple[int, list[str]] | Iterator[tuple[Any, tuple[str, str] | None]]]:
        for piece in array_pieces(path, start):
            parsed = _piece_objects(piece)
            yield (
                (parsed[0], parsed[1])
                if parsed is not None
                else (application_object(value) for value in element_values(piece, path, start))
            )

    return _tally_keys(parts())


def _piece_objects(piece: Piece) -> tuple[int, list[str], list[Any]] | None:
    """A piece of a JSON array read by Arrow, as a block of JSON Lines is (:func:`_plain_objects`)."""
    lines = element_lines(piece)
    return None if lines is None else _plain_objects(lines)


def _piece_cells(piece: Piece, names: list[str], path: Path, start: int, schema: Schema) -> _Cells:
    """A piece's rows under every column of the file: by Arrow when it can, else element by element
    as the whole-file reader reads them (an element that is not an application object is a bad row)."""
    parsed = _piece_objects(piece)
    if parsed is not None:
        return _arrow_cells(parsed, names)
    chunk = [application_object(value) for value in element_values(piece, path, start)]
    try:
        return _records_cells(chunk, names, str(path), schema)
    except RecursionError:  # a value too deep for its text, as the whole-file reader refuses it
        raise InputError(TOO_DEEP, source=str(path)) from None


@dataclass(frozen=True)
class _Cells:
    """Text cells of consecutive JSON Lines rows, every column of the file; a bad line's row is
    blank and listed in ``malformed`` (numbered from 1 here) with its (excerpt, reason)."""

    table: Any  # pyarrow.Table of strings
    malformed: dict[int, tuple[str, str]]

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)

    def frame(self) -> pd.DataFrame:
        frame = self.table.to_pandas()
        if self.malformed:
            frame.attrs[MALFORMED_ROWS] = self.malformed
        return frame


def _take(held: list[_Cells], rows: int) -> tuple[_Cells, list[_Cells]]:
    """The first ``rows`` rows of ``held`` (all if fewer) as one, and the rest."""
    import pyarrow as pa

    if len(held) == 1 and held[0].rows <= rows:
        return held[0], []
    table = pa.concat_tables([part.table for part in held])
    malformed: dict[int, tuple[str, str]] = {}
    offset = 0
    for part in held:
        malformed.update({offset + row: bad for row, bad in part.malformed.items()})
        offset += part.rows
    taken = _Cells(table.slice(0, rows), {r: b for r, b in malformed.items() if r <= rows})
    if table.num_rows <= rows:
        return taken, []
    rest = _Cells(table.slice(rows), {r - rows: b for r, b in malformed.items() if r > rows})
    return taken, [rest]


def _json_lines_keys(path: Path, lines: int) -> tuple[list[str], int, int, tuple[int, str] | None]:
    """Every key of the file's applications in order of first appearance, how many applications
    (lines not blank) and how many good, and the first bad one's number and reason."""

    def parts() -> Iterator[tuple[int, list[str]] | Iterator[tuple[Any, tuple[str, str] | None]]]:
        for block, first_line in _json_blocks(path, lines):
            parsed = _plain_objects(block)
            yield (parsed[0], parsed[1]) if parsed is not None else _json_lines(block, first_line)

    return _tally_keys(parts())


def _tally_keys(
    parts: Iterable[tuple[int, list[str]] | Iterator[tuple[Any, tuple[str, str] | None]]],
) -> tuple[list[str], int, int, tuple[int, str] | None]:
    """A first pass's count over its parts: each either Arrow's (rows, keys) of plain objects, or
    the objects one at a time, each with its (excerpt, reason) when it is not an application."""
    names: dict[str, None] = {}
    count = good = 0
    first_bad: tuple[int, str] | None = None
    for part in parts:
        if isinstance(part, tuple):
            count += part[0]
            good += part[0]
            names.update(dict.fromkeys(part[1]))
            continue
        for record, bad in part:
            count += 1
            if bad is not None:
                first_bad = first_bad or (count, bad[1])
                continue
            good += 1
            names.update(dict.fromkeys(record))
    return list(names), count, good, first_bad


def _json_lines_cells(block: bytes, first_line: int, names: list[str], source: str, schema: Schema) -> _Cells:
    """A block's rows under every column of the file: read by Arrow when it holds plain objects
    only (:func:`_plain_objects`, nearly every block), else a line at a time by ``json``."""
    parsed = _plain_objects(block)
    if parsed is not None:
        return _arrow_cells(parsed, names)
    return _records_cells(list(_json_lines(block, first_line)), names, source, schema)


def _arrow_cells(parsed: tuple[int, list[str], list[Any]], names: list[str]) -> _Cells:
    """Arrow's cells of a block (:func:`_plain_objects`) under every column of the file."""
    import pyarrow as pa

    rows, block_names, cells = parsed
    by_name = dict(zip(block_names, cells, strict=True))
    blank = None if len(by_name) == len(names) else pa.array(np.full(rows, "", dtype=object), pa.string())
    return _Cells(pa.table([by_name.get(name, blank) for name in names], names=names), {})


def _records_cells(
    chunk: Sequence[tuple[Mapping[str, Any], tuple[str, str] | None]],
    names: list[str],
    source: str,
    schema: Schema,
) -> _Cells:
    """Application objects, each with its (excerpt, reason) if it was not one, as text cells under
    every column of the file, a cell at a time (:func:`.reading.objects_table`)."""
    import pyarrow as pa

    if not chunk:
        return _Cells(pa.table([pa.array([], pa.string())] * len(names), names=names), {})
    table = objects_table([record for record, _ in chunk], source, schema)
    table = table.reindex(columns=names, fill_value="")
    if len(table) == 0:  # only empty objects and bad lines: no column to make the rows from
        table = pd.DataFrame({name: [""] * len(chunk) for name in names})
    malformed = {i: bad for i, (_, bad) in enumerate(chunk, start=1) if bad is not None}
    arrays = [pa.array(table[name].to_numpy(dtype=object), pa.string()) for name in names]
    return _Cells(pa.table(arrays, names=names), malformed)


def _plain_objects(block: bytes) -> tuple[int, list[str], list[Any]] | None:
    """A block of JSON Lines read by Arrow: its number of rows, the applications' keys and their
    text cells; None unless every line is a plain application object (:func:`.cells.json_cells`).

    Arrow is trusted only where it reads as ``json`` would: every line one object from ``{`` to
    ``}`` and as many rows as lines (no blank line, no two objects on a line, no ``null`` line),
    UTF-8 throughout, no key twice (Arrow refuses, ``json`` keeps the last). Strings Arrow took
    for timestamps are read again as the strings they were, when they are cells: a results file's
    ``timestamp`` beside ``input_data`` is not, and reading every block twice for it cost a third
    of reading a results file.
    """
    import pyarrow as pa
    import pyarrow.json as pj

    lines = _object_lines(block)
    if not lines or not _is_utf8(io.BytesIO(block)):
        return None
    read = pj.ReadOptions(use_threads=False, block_size=len(block) + 1)
    try:
        table = pj.read_json(io.BytesIO(block), read_options=read)
        if any(too_deep(f.type) for f in table.schema):
            return None
        schema = pa.schema([f.with_type(timestamps_as_text(f.type)) for f in table.schema])
        if any(schema.field(f.name) != f for f in _cell_fields(table.schema)):
            parse = pj.ParseOptions(explicit_schema=schema)
            table = pj.read_json(io.BytesIO(block), read_options=read, parse_options=parse)
    except (pa.ArrowException, ValueError):  # a line Arrow refuses: json names what is wrong
        return None
    if table.num_rows != lines:
        return None
    read_cells = json_cells(table)
    return None if read_cells is None else (table.num_rows, *read_cells)


def _cell_fields(schema: Any) -> list[Any]:
    """The fields whose values become cells (:func:`.cells.json_cells`): a results file's
    ``input_data`` when it is an object, else every field."""
    import pyarrow as pa

    wrapper = [f for f in schema if f.name == "input_data" and pa.types.is_struct(f.type)]
    return wrapper or list(schema)


ARROW_OPENINGS = 1000
"""Most ``{`` and ``[`` a line may hold for Arrow to read it (0.08 s a block at that depth, 20 times
short of a crash; an application nests 2 levels, a results file's line 3)."""


def _object_lines(block: bytes) -> int:
    """The number of lines if every line starts with ``{`` and ends with ``}`` (before a ``\\r``),
    else 0. Then no value spans two lines (after a ``}`` that does not close the object comes ``,``
    or ``}``, never ``{``), and a line that holds one value holds one object."""
    buffer = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(buffer == 10)  # where each line's \n is (or would be)
    if len(ends) == 0 or ends[-1] != len(buffer) - 1:
        ends = np.append(ends, len(buffer))
    starts = np.concatenate(([0], ends[:-1] + 1))
    last = ends - 1 - (buffer[np.maximum(ends - 1, 0)] == 13)
    if np.any(last <= starts):  # blank, or too short to be an object
        return 0
    objects = np.all(buffer[starts] == ord("{")) and np.all(buffer[last] == ord("}"))
    if not objects:
        return 0
    # Arrow's JSON reader recurses once per level: 20,000 levels crash the process (a
    # segmentation fault, not an error) and 10,000 take 15 s. A line that opens more brackets
    # than ARROW_OPENINGS (in strings too: a bound on its depth that a string cannot hide) is left
    # to ``json``, which refuses deep values by name. Only a line longer than that can: nearly
    # every block has none, and costs nothing more.
    if (ends - starts).max() <= ARROW_OPENINGS:
        return len(ends)
    # ``[`` (0x5b) and ``{`` (0x7b) are the bytes equal to 0x7b once 0x20 is set.
    opening = np.flatnonzero((buffer | 0x20) == ord("{"))
    per_line = np.diff(np.searchsorted(opening, np.append(starts, len(buffer))))
    return len(ends) if per_line.max() <= ARROW_OPENINGS else 0


def _json_blocks(path: Path, lines: int) -> Iterator[tuple[bytes, int]]:
    """The file in blocks of ``lines`` whole lines, each with the number of its first line; the
    first without its BOM."""
    first_line = 1
    with path.open("rb") as handle:
        for block in _line_blocks(handle, lines):
            if first_line == 1 and block.startswith(b"\xef\xbb\xbf"):
                block = block[3:]
            yield block, first_line
            first_line += lines  # every block but the last has as many


def _json_lines(block: bytes, first_line: int) -> Iterator[tuple[dict[str, Any], tuple[str, str] | None]]:
    """Each line's application object (a results file's ``input_data``), numbered as ``read_table``
    does; a line that is not one is an empty object with its (excerpt, reason); blank lines none."""
    for line_number, raw in enumerate(io.BytesIO(block), start=first_line):
        line = raw.decode("utf-8")
        if not line.strip():
            continue
        yield json_line(line, line_number)


def _whole(path: Path, batch_rows: int, schema: Schema) -> Iterator[Batch]:
    """The file read whole and cut; each batch keeps its own bad rows, numbered from its first (they
    were the whole file's, numbered from its first row: a batch past the first failed on them)."""
    table = read_table(path, schema)
    malformed = table.attrs.get(MALFORMED_ROWS, {})
    for start in range(0, len(table), batch_rows):
        batch = table.iloc[start : start + batch_rows].reset_index(drop=True)
        batch.attrs = {}
        own = {row - start: bad for row, bad in malformed.items() if start < row <= start + batch_rows}
        if own:
            batch.attrs[MALFORMED_ROWS] = own
        yield Batch(batch, start + 1)
