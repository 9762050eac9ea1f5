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
    Field("Age", "age", "integer", "Applicant's age in years", 35, minimum=18, maximum=100),
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
    ),
    Field("Duration", "duration", "integer", "Loan duration in months", 12, positive=True),
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
    """The field for a canonical column name (``Saving accounts``), or an error that lists them."""
    try:
        return _BY_NAME[name]
    except KeyError:
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
    if path.stat().st_size == 0:
        raise InputError("file is empty", source=source)
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return _read_parquet(path)
    if suffix in {".json", ".jsonl", ".ndjson"}:
        return _read_json(path.read_bytes(), source)
    head = path.open("rb").read(1).lstrip(b"\xef\xbb\xbf")
    if head in (b"[", b"{"):
        return _read_json(path.read_bytes(), source)
    return _read_csv(path)


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
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as error:
        detail = str(error).splitlines()[0]
        match = re.search(r"Expected (\d+) columns, got (\d+)", detail)
        if match:
            detail = f"expected {match.group(1)} fields, got {match.group(2)}"
        raise InputError(f"malformed CSV: {detail}", source=source) from None
    frame = table.to_pandas()
    frame.columns = pd.Index(header)
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
            text = column.map(lambda v: "" if pd.isna(v) else (f"{v:.0f}" if float(v).is_integer() else repr(float(v))))
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
    reasons: dict[int, tuple[str, str, str]] = {}
    frame: dict[str, Any] = {}
    given: dict[str, Any] = {}

    def flag(mask: np.ndarray, column: str, values: np.ndarray, reason: Any) -> None:
        nonlocal bad
        fresh = mask & ~bad
        for i in np.flatnonzero(fresh):
            value = str(values[i])
            reasons[int(i)] = (column, value, reason(value) if callable(reason) else reason)
        bad |= mask

    for f in (*FIELDS, OUTCOME):
        raw_name = columns.get(f.name)
        if raw_name is None:
            if f.is_category and f.missing_is_unknown:
                frame[f.name] = np.full(n, UNKNOWN, dtype=object)
            elif f.name != OUTCOME.name:
                frame[f.name] = np.full(n, None, dtype=object)
            continue
        text = table[raw_name].astype(str).str.strip().to_numpy(dtype=object)
        lowered = np.char.lower(text.astype(str))
        missing = np.isin(lowered, list(MISSING_TOKENS))
        if f.is_category:
            values, given_values = _validate_category(f, text, lowered, missing, on_unknown, flag)
        else:
            values, given_values = _validate_number(f, text, missing, flag)
        frame[f.name] = values
        if f.name != OUTCOME.name:
            given[raw_name] = given_values

    keep = ~bad
    index = pd.Index(rows[keep], name="row")
    out = pd.DataFrame({k: v[keep] for k, v in frame.items()}, index=index)
    given_frame = pd.DataFrame({k: v[keep] for k, v in given.items()}, index=index)
    if id_column is not None:
        ids = pd.Series(table[id_column].to_numpy(dtype=object)[keep], index=index, name=ID_COLUMN)
    else:
        ids = pd.Series(rows[keep] - 1, index=index, name=ID_COLUMN)
    rejects = [
        Reject(row=int(i) + 1, column=c, value=v, reason=r) for i, (c, v, r) in sorted(reasons.items())
    ]
    return Applications(out, given_frame, ids, rejects, source, columns)


def _validate_category(
    f: Field,
    text: np.ndarray,
    lowered: np.ndarray,
    missing: np.ndarray,
    on_unknown: OnUnknown,
    flag: Any,
) -> tuple[np.ndarray, np.ndarray]:
    lookup = {c.lower(): c for c in f.levels()}
    values = pd.Series(lowered).map(lookup).to_numpy(dtype=object)
    known = pd.notna(values)
    given_values = values.copy()
    if f.missing_is_unknown:
        values[missing] = UNKNOWN
        given_values[missing] = None
    else:
        flag(missing & ~known, f.name, text, "missing value")
    unknown = ~known & ~missing
    if unknown.any():
        if on_unknown == "unknown" and f.name != OUTCOME.name:
            values[unknown] = UNKNOWN
            given_values[unknown] = text[unknown]
        else:
            allowed = ", ".join(f.categories)
            flag(unknown, f.name, text, lambda v: f"'{v}' is not one of: {allowed}")
    return values, given_values


def _validate_number(
    f: Field, text: np.ndarray, missing: np.ndarray, flag: Any
) -> tuple[np.ndarray, np.ndarray]:
    numbers = pd.to_numeric(pd.Series(text), errors="coerce").to_numpy(dtype=np.float64)
    not_numeric = np.isnan(numbers) & ~missing
    flag(missing, f.name, text, "missing value")
    kind = "a whole number" if f.kind == "integer" else "a number"
    flag(not_numeric, f.name, text, lambda v: f"'{v}' is not {kind}")
    finite = np.isfinite(numbers)
    flag(~finite & ~np.isnan(numbers), f.name, text, lambda v: f"'{v}' is not {kind}")
    with np.errstate(invalid="ignore"):
        if f.kind == "integer":
            flag(finite & (numbers != np.round(numbers)), f.name, text, lambda v: f"'{v}' is not {kind}")
        if f.positive:
            flag(finite & (numbers <= 0), f.name, text, lambda v: f"{v} is not positive")
        else:
            low, high = f.minimum, f.maximum
            outside = finite & ((numbers < low) | (numbers > high))
            flag(outside, f.name, text, lambda v: f"{v} is outside {low:g}\u2013{high:g}")
    given_values: np.ndarray
    if f.kind == "integer":
        given_values = np.where(finite, numbers, 0).astype(np.int64).astype(object)
    else:
        integral = finite & (numbers == np.round(numbers))
        given_values = np.where(integral, numbers.astype(object), numbers.astype(object))
        given_values[integral] = numbers[integral].astype(np.int64)
    return numbers, given_values


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
