"""Reading applications from CSV, Parquet and JSON into a table of text cells, and the front doors.

All formats meet as text cells under the file's own column names, so that one validator
(:mod:`.validation`) gives the same verdicts and messages whatever the file was.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError
from .cells import cell_text, parquet_cells
from .german import GERMAN
from .schema import OnUnknown, Schema, normalize_name
from .validation import MALFORMED_ROWS, Applications, validate
from .values import excerpt

# --------------------------------------------------------------------------------------------
# Reading files into a table of text cells


def read_table(path: str | Path, schema: Schema = GERMAN) -> pd.DataFrame:
    """Read CSV, Parquet or JSON into a frame of text cells with the file's own column names.

    Raises :class:`InputError` for files that hold no applications at all or whose header is
    unusable; row-level problems are left to :func:`validate`.
    """
    path = Path(path)
    source = str(path)
    kind = file_kind(path)
    if kind == "parquet":
        return _read_parquet(path, schema)
    is_json = kind == "json"
    try:
        return _read_json(path.read_bytes(), source, schema) if is_json else _read_csv(path, schema)
    except UnicodeDecodeError:
        raise _not_utf8(path, csv_rows=not is_json) from None


def file_kind(path: Path) -> str:
    """``parquet``, ``json`` or ``csv``, from the name and the first byte; a missing, empty,
    directory or non-regular path (a pipe, a device) is an :class:`InputError`."""
    source = str(path)
    if not path.exists():
        raise InputError("file not found", source=source)
    if path.is_dir():
        raise InputError("is a directory, not a file", source=source)
    if not path.is_file():
        # A pipe or a device has no size to check and may never end: save the applications first.
        raise InputError(
            "not a regular file (a pipe or a device); save the applications to a file", source=source
        )
    if path.stat().st_size == 0:
        raise InputError("file is empty", source=source)
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    with path.open("rb") as handle:
        head = handle.read(4).lstrip(b"\xef\xbb\xbf")[:1]
    return "json" if suffix in {".json", ".jsonl", ".ndjson"} or head in (b"[", b"{") else "csv"


def _not_utf8(path: Path, *, csv_rows: bool) -> InputError:
    """The one-line error for text that is not UTF-8, naming the line (and a CSV's data row)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return InputError(
            f"not UTF-8 text (byte 0x{data[error.start]:02x} on line {line}); save the file as UTF-8",
            source=str(path),
            row=line - 1 if csv_rows and line > 1 else None,  # line 1 of a CSV is its header
        )
    return InputError("not UTF-8 text; save the file as UTF-8", source=str(path))


def _is_utf8(data: Any) -> bool:
    """Whether a file (a path) or a block of one (bytes in a BytesIO) is UTF-8 text throughout."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        if isinstance(data, io.BytesIO):
            block = data.getvalue()  # the BytesIO's own bytes, not a copy
            if not block.isascii():
                decoder.decode(block, final=True)
            return True
        with Path(data).open("rb") as handle:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def check_header(names: Sequence[str], source: str, schema: Schema = GERMAN) -> None:
    """Refuse a header that names one field twice, however the two are spelled."""
    seen: dict[str, str] = {}
    for raw in names:
        key = schema.canonical_column(raw) or normalize_name(raw)
        if key == "" and not seen.get(""):
            seen[""] = raw
            continue
        if key in seen:
            raise InputError(
                f"duplicate columns '{seen[key]}' and '{raw}' (both mean '{key}')", source=source
            )
        seen[key] = raw


def _read_csv(path: Path, schema: Schema) -> pd.DataFrame:
    delimiter, header, _ = csv_layout(path, schema)
    return parse_csv(path, header, delimiter, path=path, skip_rows=1)


def csv_layout(path: Path, schema: Schema = GERMAN) -> tuple[str, list[str], int]:
    """A CSV's delimiter, its checked header, and the byte offset where its data rows start."""
    source = str(path)
    with path.open("rb") as handle:
        raw = handle.readline()
    first = raw.decode("utf-8-sig")
    if not first.strip():
        raise InputError("file is empty", source=source)
    delimiter = ";" if first.count(";") > first.count(",") else ","
    try:
        header = next(csv.reader([first.rstrip("\r\n")], delimiter=delimiter))
    except csv.Error as error:  # e.g. one 50 MB line: no header a CSV of applications could have
        raise InputError(f"malformed CSV header ({error})", source=source) from None
    header = [h.strip() for h in header]
    check_header(header, source, schema)
    return delimiter, header, len(raw)


def parse_csv(data: Any, header: list[str], delimiter: str, *, path: Path, skip_rows: int) -> pd.DataFrame:
    """CSV rows (a file, or a block of its lines) as text cells; a row with the wrong field count stays
    in place as a blank row, recorded in ``attrs[MALFORMED_ROWS]`` by its row number in ``data``."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    source = str(path)
    names = [f"c{i}" for i in range(len(header))]
    malformed: dict[int, tuple[str, str]] = {}

    def reject_row(row: Any) -> str:
        # ``number`` counts the lines skipped (the header) too; rows are numbered from the first data row.
        reason = f"has {row.actual_columns} fields, the header has {row.expected_columns}"
        malformed[int(row.number) - skip_rows] = (excerpt(row.text), reason)
        return "skip"

    # Arrow's check of every string cell was a quarter of the parse; Python's decoder looks at a
    # block (nearly always ASCII) in a fraction of that, and a block that is UTF-8 throughout
    # holds only UTF-8 cells (fields are cut at ASCII bytes). Any other block Arrow checks itself.
    check_utf8 = not (isinstance(data, io.BytesIO) and _is_utf8(data))

    def read(threaded: bool) -> Any:
        if hasattr(data, "seek"):
            data.seek(0)
        return pacsv.read_csv(
            data,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=skip_rows, block_size=1 << 24, use_threads=threaded
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=False,
                invalid_row_handler=None if threaded else reject_row,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=check_utf8,
            ),
        )

    try:
        try:
            table = read(threaded=True)
        except pa.ArrowInvalid as error:
            if "columns, got" not in str(error):
                raise
            # Arrow hands a bad row's text to the handler below decoded, and cannot if it is not
            # UTF-8: such a file is refused as not text before the rows are looked at one by one.
            if not _is_utf8(data):
                raise _not_utf8(path, csv_rows=True) from None
            # A row with the wrong number of fields is a bad row, not a bad file: read again on one
            # thread, where the parser knows each bad row's number, and keep a blank row in its place.
            table = read(threaded=False)
    except pa.ArrowInvalid as error:
        if "invalid UTF8" in str(error):
            raise _not_utf8(path, csv_rows=True) from None
        if "straddl" in str(error):  # Arrow's words for a line longer than its block
            raise InputError("malformed CSV: a line longer than 16 MB", source=source) from None
        raise InputError(f"malformed CSV: {str(error).splitlines()[0]}", source=source) from None
    frame = table.to_pandas()
    frame.columns = pd.Index(header)
    if malformed:
        total = len(frame) + len(malformed)
        frame.index = pd.Index([r for r in range(1, total + 1) if r not in malformed])
        frame = frame.reindex(pd.RangeIndex(1, total + 1), fill_value="").reset_index(drop=True)
        frame.attrs[MALFORMED_ROWS] = malformed
    return frame


def parquet_reason(error: BaseException, path: Path) -> str:
    """Why Arrow could not read a Parquet file, in one line and without the path (named once, in front)."""
    return str(error).split(f"'{path}': ", 1)[-1].splitlines()[0]


def _read_parquet(path: Path, schema: Schema) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        # The names first: Arrow refuses a file with a column twice in words of its own.
        check_header(pq.read_schema(path).names, str(path))
        table = pq.read_table(path)
    except InputError:
        raise
    except Exception as error:  # pyarrow raises several unrelated types for a broken file
        raise InputError(
            f"not a readable Parquet file ({parquet_reason(error, path)})", source=str(path)
        ) from None
    check_header(table.column_names, str(path), schema)
    return parquet_cells(table)


def _read_json(data: bytes, source: str, schema: Schema) -> pd.DataFrame:
    text = data.decode("utf-8-sig")
    stripped = text.strip()
    if not stripped:
        raise InputError("file is empty", source=source)
    try:
        try:
            parsed: Any = json_value(stripped)
        except json.JSONDecodeError as error:
            lines = stripped.splitlines()
            if stripped.startswith("[") or not any(_is_object_line(line) for line in lines):
                raise invalid_json(error.msg, error.lineno, error.colno, source) from None
            return _read_json_lines(lines, source, schema)
        return records_to_table(parsed if isinstance(parsed, list) else [parsed], source, schema)
    except RecursionError:
        # The parser gives up past about a thousand levels; a value just under that is still too
        # deep to turn into text. No application is nested at all, so either is a broken file.
        raise InputError(TOO_DEEP, source=source) from None


_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(value: Any) -> Any:
    """Strings with a lone UTF-16 surrogate (JSON may escape one, ``"\\ud800"``, no text can hold
    it) get U+FFFD in its place: a bad value of its row, not a UnicodeEncodeError in Arrow."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    return value


def json_value(text: str) -> Any:
    """``json.loads``, except that what no cell can hold becomes a bad value instead of a crash.

    An integer too long for Python (over 4,300 digits) stays text, like the same digits in a CSV;
    a lone surrogate becomes U+FFFD. Both are rare, so the common path pays nothing for them.
    """
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError:  # only now pay for a Python call per integer
        parsed = json.loads(text, parse_int=_json_int)
    if "\\u" in text and _ESCAPED_SURROGATE.search(text):
        return _without_surrogates(parsed)
    return parsed


def _json_int(text: str) -> int | str:
    return int(text) if len(text.lstrip("-")) <= 4000 else text


def _is_object_line(line: str) -> bool:
    line = line.strip()
    if not (line.startswith("{") and line.endswith("}")):
        return False
    try:
        return isinstance(json_value(line), dict)
    except (json.JSONDecodeError, RecursionError):
        return False


def _read_json_lines(lines: list[str], source: str, schema: Schema) -> pd.DataFrame:
    """JSON Lines, one application per non-blank line: a bad line is a rejected row, as in a CSV.

    The bad line keeps its place as a row of empty cells, marked malformed with its reason, so the
    rows after it keep their numbers and the good ones are read all the same.
    """
    records: list[Any] = []
    malformed: dict[int, tuple[str, str]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record, bad = json_line(line, number)
        if bad is not None:
            malformed[len(records) + 1] = bad
        records.append(record)
    if len(malformed) == len(records):
        first, (_, reason) = next(iter(malformed.items()))
        raise InputError(reason, source=source, row=first)
    table = objects_table(records, source, schema)
    if malformed:
        table.attrs[MALFORMED_ROWS] = malformed
    return table


TOO_DEEP = "JSON nested too deeply; an application is one object of plain values"


def invalid_json(reason: str, line: int, column: int, source: str) -> InputError:
    """The one line for a JSON file that does not parse: ``json``'s reason and where in the file
    (its text past a BOM and leading whitespace), whether it was read whole or streamed."""
    return InputError(f"invalid JSON ({reason}, line {line}, column {column})", source=source)


def json_line(line: str, number: int) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """One line of JSON Lines as an application object (a results file's ``input_data`` unwrapped),
    or, for a line that is not one, an empty object with (the line's excerpt, the reason)."""
    reason = None
    try:
        record = json_value(line)
    except json.JSONDecodeError as error:
        reason = f"invalid JSON on line {number} ({error.msg})"
    except RecursionError:
        reason = TOO_DEEP
    else:
        record = unwrapped(record)
        if not isinstance(record, dict):
            reason = f"expected an application object on line {number}"
    if reason is not None:
        return {}, (excerpt(line.strip()), reason)
    return record, None


@dataclass(frozen=True)
class NotAnApplication:
    """An element of a request body that could not be read as an application (a CSV row with the
    wrong number of fields, a line that is not JSON), with an excerpt and the reason: it keeps its
    place, so that :func:`application_objects` rejects it alone and its neighbours keep their
    numbers and are read."""

    text: str
    reason: str


def unwrapped(record: Any) -> Any:
    """A results file's object as the application it holds (its ``input_data``); anything else as
    it is. Once only: the original's result objects wrap an application, never another result."""
    if isinstance(record, Mapping) and isinstance(record.get("input_data"), Mapping):
        return record["input_data"]
    return record


def application_objects(
    records: Iterable[Any], source: str
) -> tuple[list[Mapping[str, Any]], dict[int, tuple[str, str]]]:
    """The objects of a JSON array or a request body, each unwrapped once, and the positions of
    those that are not application objects with (an excerpt, the reason).

    Such an element is one bad row, as a bad line of JSON Lines is: it keeps its place as an empty
    object and is rejected, and its neighbours are read. Only when no element is an object is the
    whole input unusable (the first named).
    """
    rows: list[Mapping[str, Any]] = []
    malformed: dict[int, tuple[str, str]] = {}
    for number, record in enumerate(records, start=1):
        row, bad = application_object(record)
        if bad is not None:
            malformed[number] = bad
        rows.append(row)
    if rows and len(malformed) == len(rows):
        first, (_, reason) = next(iter(malformed.items()))
        raise InputError(reason, source=source, row=first)
    return rows, malformed


def application_object(record: Any) -> tuple[Mapping[str, Any], tuple[str, str] | None]:
    """One element of a JSON array or a request body as its application (unwrapped once), or, for
    one that is not an application object, an empty object with (an excerpt, the reason): the
    rule :func:`application_objects` applies to each, and a streamed JSON array too."""
    record = unwrapped(record)
    if isinstance(record, NotAnApplication):
        return {}, (record.text, record.reason)
    if not isinstance(record, Mapping):
        return {}, (excerpt(_as_json(record)), "expected an application object")
    return record, None


def _as_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def records_to_table(
    records: Iterable[Any], source: str = "<request>", schema: Schema = GERMAN
) -> pd.DataFrame:
    """Turn application objects (dicts) into a frame of text cells; an element that is not one is
    a bad row (:data:`.validation.MALFORMED_ROWS`), and if none is, the input is refused."""
    rows, malformed = application_objects(records, source)
    table = objects_table(rows, source, schema)
    if malformed:
        table.attrs[MALFORMED_ROWS] = malformed
    return table


def objects_table(rows: Sequence[Mapping[str, Any]], source: str, schema: Schema) -> pd.DataFrame:
    """Application objects, already unwrapped (:func:`json_line` did it line by line), as a frame
    of text cells under the union of their keys in first-seen order."""
    if not rows:
        raise InputError("no applications (empty list)", source=source)
    names: list[str] = []
    for record in rows:
        for key in record:
            if key not in names:
                names.append(key)
    check_header(names, source, schema)
    # Cell by cell, not through pandas' type inference: an integer past int64 must reach
    # validation as the digits given, not as a float or a wrapped-around int64.
    return pd.DataFrame(
        {name: pd.Series([cell_text(r.get(name)) for r in rows], dtype=object) for name in names}
    )


# --------------------------------------------------------------------------------------------
# Front doors


def read_applications(
    path: str | Path,
    *,
    on_unknown: OnUnknown = "error",
    required: Iterable[str] | None = None,
    schema: Schema = GERMAN,
) -> Applications:
    """Read and validate an applications file in any supported format."""
    table = read_table(path, schema)
    return validate(table, source=str(path), on_unknown=on_unknown, required=required, schema=schema)


def applications_from_records(
    records: Sequence[Mapping[str, Any]],
    *,
    source: str = "<request>",
    on_unknown: OnUnknown = "error",
    required: Iterable[str] | None = None,
    schema: Schema = GERMAN,
) -> Applications:
    """Validate application objects, e.g. from a JSON request body."""
    return validate(
        records_to_table(records, source, schema),
        source=source,
        on_unknown=on_unknown,
        required=required,
        schema=schema,
    )


def applications_from_csv_text(
    text: str, *, source: str = "<request>", on_unknown: OnUnknown = "error", schema: Schema = GERMAN
) -> Applications:
    """Validate CSV text, with or without a header row (without one, the original column order)."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise InputError("empty body", source=source)
    first = text.splitlines()[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    cells = list(csv.reader([first], delimiter=delimiter))[0]
    has_header = any(schema.canonical_column(c) is not None for c in cells)
    frame = pd.read_csv(
        io.StringIO(text),
        sep=delimiter,
        dtype=str,
        keep_default_na=False,
        header=0 if has_header else None,
    )
    if not has_header:
        if frame.shape[1] != len(schema.fields):
            raise InputError(
                f"a CSV without a header needs {len(schema.fields)} fields in the order "
                f"{', '.join(schema.field_names)}; got {frame.shape[1]}",
                source=source,
            )
        frame.columns = pd.Index(schema.field_names)
    else:
        check_header([str(c) for c in frame.columns], source, schema)
    return validate(frame, source=source, on_unknown=on_unknown, schema=schema)
