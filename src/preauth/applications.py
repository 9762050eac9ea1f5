"""Credit applications: the one schema, and reading and validating files against it.

Every other stage (labels, training, scoring, the service, the page) derives its columns, types,
categories, ranges and examples from :data:`FIELDS`. Change the schema here and nowhere else.

Reading is vectorised because the same code validates a 1,000-row training set and a
1,000,000-row scoring job. A bad row never stops the others: it becomes a :class:`Reject` with its
reason, and the caller decides whether any rejects make the run fail.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import InputError

OnUnknown = Literal["error", "unknown"]
UNKNOWN = "unknown"
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "none", "null"})


@dataclass(frozen=True)
class Field:
    """One column of an application, in the original pipeline's spelling."""

    name: str
    key: str
    kind: Literal["integer", "number", "category"]
    description: str
    example: Any
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False
    categories: tuple[str, ...] = ()
    missing_is_unknown: bool = False
    required: bool = True
    aliases: tuple[str, ...] = ()
    readable: Mapping[str, str] = field(default_factory=dict)
    unit: str = ""

    @property
    def is_category(self) -> bool:
        return self.kind == "category"

    def levels(self) -> tuple[str, ...]:
        """Category levels the model sees, ``unknown`` last where a missing value is allowed."""
        if self.missing_is_unknown:
            return (*self.categories, UNKNOWN)
        return self.categories

    def describe_range(self) -> str:
        if self.positive:
            return "a positive number"
        return f"{self.minimum:g}\u2013{self.maximum:g}"


FIELDS: tuple[Field, ...] = (
    Field("Age", "age", "integer", "Applicant's age in years", 35, minimum=18, maximum=100, unit="years"),
    Field(
        "Sex",
        "sex",
        "category",
        "Applicant's sex; kept for fairness checks, left out of the model by default",
        "male",
        categories=("male", "female"),
        required=False,
    ),
    Field(
        "Job",
        "job",
        "integer",
        "0 unskilled non-resident, 1 unskilled resident, 2 skilled, 3 highly skilled",
        2,
        minimum=0,
        maximum=3,
        readable={
            "0": "unskilled, non-resident",
            "1": "unskilled, resident",
            "2": "skilled",
            "3": "highly skilled",
        },
    ),
    Field(
        "Housing",
        "housing",
        "category",
        "Whether the applicant owns, rents or lives free",
        "own",
        categories=("own", "rent", "free"),
    ),
    Field(
        "Saving accounts",
        "saving_accounts",
        "category",
        "Balance of savings accounts; missing means unknown",
        "little",
        categories=("little", "moderate", "quite rich", "rich"),
        missing_is_unknown=True,
        required=False,
        aliases=("savings account", "savings accounts", "saving account"),
    ),
    Field(
        "Checking account",
        "checking_account",
        "category",
        "Balance of the checking account; missing means unknown",
        "little",
        categories=("little", "moderate", "rich"),
        missing_is_unknown=True,
        required=False,
        aliases=("checking accounts",),
    ),
    Field(
        "Credit amount",
        "credit_amount",
        "number",
        "Amount asked for, in Deutsche Mark",
        2500,
        positive=True,
        aliases=("amount",),
        unit="DM",
    ),
    Field("Duration", "duration", "integer", "Loan duration in months", 12, positive=True, unit="months"),
    Field(
        "Purpose",
        "purpose",
        "category",
        "What the loan is for",
        "car",
        categories=(
            "car",
            "furniture/equipment",
            "radio/TV",
            "domestic appliances",
            "repairs",
            "education",
            "business",
            "vacation/others",
        ),
    ),
)

OUTCOME = Field(
    "Risk",
    "risk",
    "category",
    "The applicant's real repayment outcome",
    "good",
    categories=("good", "bad"),
    required=False,
)
ID_COLUMN = "id"
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
DEFAULT_EXCLUDED: tuple[str, ...] = ("Sex",)
"""Left out of the model by default: sex is a prohibited basis for credit decisions (ECOA/Reg B)."""

_BY_NAME = {f.name: f for f in (*FIELDS, OUTCOME)}
_ID_ALIASES = frozenset({"", "id", "index", "unnamed_0", "application_id", "applicant_id"})


def field_by_name(name: str) -> Field:
    """The field for a column name in any spelling (``saving_accounts``), or an error listing them."""
    try:
        return _BY_NAME[name]
    except KeyError:
        canonical = canonical_column(name)
        if canonical is not None:
            return _BY_NAME[canonical]
        names = ", ".join(_BY_NAME)
        raise InputError(f"unknown column '{name}'; the columns are: {names}") from None


def normalize_name(name: str) -> str:
    """The spelling-free form of a column name: ``SAVING ACCOUNTS`` → ``saving_accounts``."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lstrip("\ufeff").lower()).strip("_")


_ALIASES: dict[str, str] = {}
for _f in (*FIELDS, OUTCOME):
    for _alias in (_f.name, _f.key, *_f.aliases):
        _ALIASES[normalize_name(_alias)] = _f.name


def canonical_column(name: str) -> str | None:
    """The canonical name a column header refers to, or None when it is not an application field."""
    return _ALIASES.get(normalize_name(name))


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

    @property
    def has_outcome(self) -> bool:
        return OUTCOME.name in self.frame.columns

    def __len__(self) -> int:
        return len(self.frame)

    def reject_messages(self) -> list[str]:
        return [r.message(self.source) for r in self.rejects]


# --------------------------------------------------------------------------------------------
# Reading files into a table of text cells


def read_table(path: str | Path) -> pd.DataFrame:
    """Read CSV, Parquet or JSON into a frame of text cells with the file's own column names.

    Raises :class:`InputError` for files that hold no applications at all or whose header is
    unusable; row-level problems are left to :func:`validate`.
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise InputError("file not found", source=source)
    if path.is_dir():
        raise InputError("is a directory, not a file", source=source)
    if path.stat().st_size == 0:
        raise InputError("file is empty", source=source)
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return _read_parquet(path)
    with path.open("rb") as handle:
        head = handle.read(4).lstrip(b"\xef\xbb\xbf")[:1]
    is_json = suffix in {".json", ".jsonl", ".ndjson"} or head in (b"[", b"{")
    try:
        return _read_json(path.read_bytes(), source) if is_json else _read_csv(path)
    except UnicodeDecodeError:
        raise _not_utf8(path, csv_rows=not is_json) from None


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


MALFORMED_ROWS = "preauth.malformed_rows"
"""Key in a read table's ``attrs``: {row: (text, reason)} for CSV rows that could not be split into cells."""


def _check_header(names: Sequence[str], source: str) -> None:
    seen: dict[str, str] = {}
    for raw in names:
        key = canonical_column(raw) or normalize_name(raw)
        if key == "" and not seen.get(""):
            seen[""] = raw
            continue
        if key in seen:
            raise InputError(
                f"duplicate columns '{seen[key]}' and '{raw}' (both mean '{key}')", source=source
            )
        seen[key] = raw


def _read_csv(path: Path) -> pd.DataFrame:
    import pyarrow as pa
    from pyarrow import csv as pacsv

    source = str(path)
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
    if not first.strip():
        raise InputError("file is empty", source=source)
    delimiter = ";" if first.count(";") > first.count(",") else ","
    header = next(csv.reader([first], delimiter=delimiter))
    header = [h.strip() for h in header]
    _check_header(header, source)
    names = [f"c{i}" for i in range(len(header))]
    malformed: dict[int, tuple[str, str]] = {}

    def reject_row(row: Any) -> str:
        # ``number`` counts the header as row 1; rows are numbered from the first data row.
        reason = f"has {row.actual_columns} fields, the header has {row.expected_columns}"
        malformed[int(row.number) - 1] = (row.text, reason)
        return "skip"

    def read(threaded: bool) -> Any:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, block_size=1 << 24, use_threads=threaded
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
            ),
        )

    try:
        try:
            table = read(threaded=True)
        except pa.ArrowInvalid as error:
            if "columns, got" not in str(error):
                raise
            # A row with the wrong number of fields is a bad row, not a bad file: read again on one
            # thread, where the parser knows each bad row's number, and keep a blank row in its place.
            table = read(threaded=False)
    except pa.ArrowInvalid as error:
        if "invalid UTF8" in str(error):
            raise _not_utf8(path, csv_rows=True) from None
        raise InputError(f"malformed CSV: {str(error).splitlines()[0]}", source=source) from None
    frame = table.to_pandas()
    frame.columns = pd.Index(header)
    if malformed:
        total = len(frame) + len(malformed)
        frame.index = pd.Index([r for r in range(1, total + 1) if r not in malformed])
        frame = frame.reindex(pd.RangeIndex(1, total + 1), fill_value="").reset_index(drop=True)
        frame.attrs[MALFORMED_ROWS] = malformed
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several unrelated types for a broken file
        raise InputError(f"not a readable Parquet file ({error})", source=str(path)) from None
    _check_header(table.column_names, str(path))
    return _cells(table.to_pandas())


def _read_json(data: bytes, source: str) -> pd.DataFrame:
    text = data.decode("utf-8-sig")
    stripped = text.strip()
    if not stripped:
        raise InputError("file is empty", source=source)
    try:
        parsed: Any = json.loads(stripped)
        records = parsed if isinstance(parsed, list) else [parsed]
    except json.JSONDecodeError:
        records = []
        for number, line in enumerate(stripped.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise InputError(f"invalid JSON ({error.msg})", source=source, row=number) from None
    return records_to_table(records, source)


def records_to_table(records: Iterable[Any], source: str = "<request>") -> pd.DataFrame:
    """Turn application objects (dicts) into a frame of text cells; non-objects are an error."""
    rows: list[dict[str, Any]] = []
    for number, record in enumerate(records, start=1):
        if isinstance(record, dict) and isinstance(record.get("input_data"), dict):
            record = record["input_data"]  # a results file's object
        if not isinstance(record, dict):
            raise InputError("expected an application object", source=source, row=number)
        rows.append(record)
    if not rows:
        raise InputError("no applications (empty list)", source=source)
    names: list[str] = []
    for record in rows:
        for key in record:
            if key not in names:
                names.append(key)
    _check_header(names, source)
    return _cells(pd.DataFrame.from_records(rows, columns=names))


def _cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as text, missing as the empty string: the common ground of all formats."""
    out = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_float_dtype(column.dtype):
            text = column.map(
                lambda v: "" if pd.isna(v) else (f"{v:.0f}" if float(v).is_integer() else repr(float(v)))
            )
        else:
            text = column.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
        out[str(name)] = text.astype(object)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------
# Validation


def validate(
    table: pd.DataFrame,
    *,
    source: str = "<input>",
    on_unknown: OnUnknown = "error",
    required: Iterable[str] | None = None,
) -> Applications:
    """Check a table of text cells against the schema; good rows become :class:`Applications`.

    Raises :class:`InputError` when the table as a whole is unusable (no rows, a required column
    missing); rows with bad values are returned as rejects, never raised.
    """
    if len(table) == 0:
        raise InputError("no applications (header only)", source=source)
    columns: dict[str, str] = {}
    id_column: str | None = None
    for position, raw in enumerate(table.columns):
        name = canonical_column(str(raw))
        if name is not None:
            columns[name] = str(raw)
        elif id_column is None and (
            normalize_name(str(raw)) in _ID_ALIASES or (position == 0 and str(raw).strip() == "")
        ):
            id_column = str(raw)
    needed = set(required) if required is not None else {f.name for f in FIELDS if f.required}
    for f in FIELDS:
        if f.name in needed and f.name not in columns:
            raise InputError(f"missing required column '{f.name}'", source=source)

    n = len(table)
    rows = np.arange(1, n + 1)
    bad = np.zeros(n, dtype=bool)
    reasons: dict[int, tuple[str | None, str, str]] = {}
    for row, (text, reason) in table.attrs.get(MALFORMED_ROWS, {}).items():
        bad[row - 1] = True
        reasons[row - 1] = (None, text, reason)
    frame: dict[str, Any] = {}
    given: dict[str, Any] = {}

    for f in (*FIELDS, OUTCOME):
        raw_name = columns.get(f.name)
        if raw_name is None:
            if f.is_category and f.missing_is_unknown:
                frame[f.name] = np.full(n, UNKNOWN, dtype=object)
            elif f.name != OUTCOME.name:
                frame[f.name] = np.full(n, None, dtype=object)
            continue
        # Work on the distinct values of the column, then spread the verdicts back to the rows:
        # a million rows hold a few dozen distinct categories and a few thousand distinct numbers.
        uniques, codes = _distinct(table[raw_name])
        if f.is_category:
            values_u, given_u, errors_u = _check_categories(f, uniques, on_unknown)
        else:
            values_u, given_u, errors_u = _check_numbers(f, uniques)
        failing = np.array([e is not None for e in errors_u], dtype=bool)
        if failing.any():
            row_fails = failing[codes]
            for i in np.flatnonzero(row_fails & ~bad):
                code = int(codes[i])
                reasons[int(i)] = (f.name, uniques[code].strip(), str(errors_u[code]))
            bad |= row_fails
        frame[f.name] = _Spread(values_u, codes, f.is_category, f.levels())
        if f.name != OUTCOME.name:
            given[raw_name] = _Spread(given_u, codes, f.is_category, f.categories)

    keep = ~bad
    index = pd.Index(rows[keep], name="row")
    out = pd.DataFrame({k: _spread(v, keep) for k, v in frame.items()}, index=index)
    given_frame = pd.DataFrame({k: _spread(v, keep) for k, v in given.items()}, index=index)
    if id_column is not None:
        ids = pd.Series(table[id_column].to_numpy(dtype=object)[keep], index=index, name=ID_COLUMN)
    else:
        ids = pd.Series(rows[keep] - 1, index=index, name=ID_COLUMN)
    rejects = [
        Reject(row=int(i) + 1, column=c, value=v, reason=r) for i, (c, v, r) in sorted(reasons.items())
    ]
    return Applications(out, given_frame, ids, rejects, source, columns)


@dataclass
class _Spread:
    """Per-distinct-value results and the row → distinct-value codes that spread them to rows."""

    values: np.ndarray
    codes: np.ndarray
    categorical: bool
    levels: tuple[str, ...] = ()


def _spread(column: _Spread | np.ndarray, keep: np.ndarray) -> Any:
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
    return pd.Categorical.from_codes(mapped[column.codes[keep]], categories=categories)


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


def _check_categories(
    f: Field, uniques: list[str], on_unknown: OnUnknown
) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    lookup = {c.lower(): c for c in f.levels()}
    allowed = ", ".join(f.categories)
    values = np.empty(len(uniques), dtype=object)
    given = np.empty(len(uniques), dtype=object)
    errors: list[str | None] = []
    for k, raw in enumerate(uniques):
        text = raw.strip()
        canonical = lookup.get(text.lower())
        error = None
        if canonical is not None:
            values[k] = given[k] = canonical
        elif text.lower() in MISSING_TOKENS:
            values[k], given[k] = (UNKNOWN, None) if f.missing_is_unknown else (None, None)
            # An application may come without its outcome: Risk is only ever used to measure.
            error = None if f.missing_is_unknown or f.name == OUTCOME.name else "missing value"
        elif on_unknown == "unknown" and f.name != OUTCOME.name:
            values[k], given[k] = UNKNOWN, text
        else:
            error = f"'{text}' is not one of: {allowed}"
        errors.append(error)
    return values, given, errors


_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def _check_numbers(f: Field, uniques: list[str]) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(pa.array(uniques, type=pa.string()))
    numeric = pc.match_substring_regex(text, _NUMBER).to_numpy(zero_copy_only=False)
    parsed = pc.cast(pc.if_else(pa.array(numeric), text, "nan"), pa.float64())
    numbers = parsed.to_numpy(zero_copy_only=False).astype(np.float64)
    numbers[~numeric] = np.nan
    kind = "a whole number" if f.kind == "integer" else "a number"
    errors: list[str | None] = [None] * len(uniques)
    finite = np.isfinite(numbers)
    with np.errstate(invalid="ignore"):
        whole = finite & (numbers == np.round(numbers))
        if f.positive:
            in_range = numbers > 0
        else:
            in_range = (numbers >= (f.minimum or 0)) & (numbers <= (f.maximum or 0))
    for k in np.flatnonzero(~(finite & in_range & (whole | (f.kind != "integer")))):
        raw = uniques[k].strip()
        if raw.lower() in MISSING_TOKENS:
            errors[k] = "missing value"
        elif not finite[k] or (f.kind == "integer" and not whole[k]):
            errors[k] = f"'{raw}' is not {kind}"
        elif f.positive:
            errors[k] = f"{raw} is not positive"
        else:
            errors[k] = f"{raw} is outside {f.minimum:g}\u2013{f.maximum:g}"
    # The values as given, typed for output: whole numbers stay integers (as the original wrote them).
    safe = np.where(finite, numbers, 0.0)
    given: np.ndarray = safe
    ok = np.array([e is None for e in errors], dtype=bool)
    if f.kind == "integer" or bool(np.all(whole[ok])):
        given = safe.astype(np.int64)
    return numbers, given, errors


# --------------------------------------------------------------------------------------------
# Front doors


def read_applications(
    path: str | Path,
    *,
    on_unknown: OnUnknown = "error",
    required: Iterable[str] | None = None,
) -> Applications:
    """Read and validate an applications file in any supported format."""
    table = read_table(path)
    return validate(table, source=str(path), on_unknown=on_unknown, required=required)


def applications_from_records(
    records: Sequence[Mapping[str, Any]],
    *,
    source: str = "<request>",
    on_unknown: OnUnknown = "error",
    required: Iterable[str] | None = None,
) -> Applications:
    """Validate application objects, e.g. from a JSON request body."""
    return validate(
        records_to_table(records, source), source=source, on_unknown=on_unknown, required=required
    )


def applications_from_csv_text(
    text: str, *, source: str = "<request>", on_unknown: OnUnknown = "error"
) -> Applications:
    """Validate CSV text, with or without a header row (without one, the original column order)."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise InputError("empty body", source=source)
    first = text.splitlines()[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    cells = list(csv.reader([first], delimiter=delimiter))[0]
    has_header = any(canonical_column(c) is not None for c in cells)
    frame = pd.read_csv(
        io.StringIO(text),
        sep=delimiter,
        dtype=str,
        keep_default_na=False,
        header=0 if has_header else None,
    )
    if not has_header:
        if frame.shape[1] != len(FIELDS):
            raise InputError(
                f"a CSV without a header needs {len(FIELDS)} fields in the order "
                f"{', '.join(FIELD_NAMES)}; got {frame.shape[1]}",
                source=source,
            )
        frame.columns = pd.Index(FIELD_NAMES)
    else:
        _check_header([str(c) for c in frame.columns], source)
    return validate(frame, source=source, on_unknown=on_unknown)


def feature_columns(exclude: Iterable[str] = DEFAULT_EXCLUDED, include: Iterable[str] = ()) -> list[str]:
    """Model input columns in schema order: all fields but the excluded ones."""
    included = {field_by_name(c).name for c in include}
    excluded = {field_by_name(c).name for c in exclude} - included
    return [f.name for f in FIELDS if f.name not in excluded]


def example_application() -> dict[str, Any]:
    """One valid application under the original column names, for docs and OpenAPI examples."""
    return {f.name: f.example for f in FIELDS}
