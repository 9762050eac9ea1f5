"""Parquet and JSON Lines read a column at a time (:mod:`preauth.applications.cells`) give exactly
the cells, rejects and results of the per-cell path they replace, on hostile generated files.

The reference is the per-cell path itself: ``cell_text`` over ``to_pandas()`` for Parquet, and for
JSON Lines the batched reader as it was (``json`` a line at a time, ``objects_table`` a batch
at a time), kept here. Each case is read at several batch sizes; the tests also check that the
fast paths did run, so that a file the fast path refuses cannot make them pass unexamined.
"""

from __future__ import annotations

import decimal
import itertools
import json
import random
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from preauth.applications import GERMAN, MALFORMED_ROWS, validate
from preauth.applications import batches as batches_module
from preauth.applications import cells as cells_module
from preauth.applications.batches import iter_tables
from preauth.applications.cells import cell_text, float_cells, table_cells
from preauth.applications.reading import _not_utf8, check_header, json_line, objects_table, read_table
from preauth.errors import InputError

BATCH_SIZES = [1, 3, 64, 100_000]
ONE_ROW_BATCHES_UP_TO = 40
"""Files of more rows are read at the other sizes only: batches of 3 already cut between every
kind of row, and a row at a time costs a validation per row (most of this module's time)."""


def batch_sizes(path: Path) -> list[int]:
    rows = (
        pq.ParquetFile(path).metadata.num_rows
        if path.suffix == ".parquet"
        else path.read_bytes().count(b"\n")
    )
    return BATCH_SIZES if rows <= ONE_ROW_BATCHES_UP_TO else BATCH_SIZES[1:]


FLOATS = [
    0.0, -0.0, 1.0, -1.0, 0.1, 0.1 + 0.2, 1.5, -2.5, 35.0, 1e-4, 1.0000000000000002e-4, 9.999999999999999e-5,
    1e-5, 5e-324, 1e9, 1e9 - 0.5, 999999999.9999999, 123456789.123, 1234567890.5, 9007199254740991.0,
    9007199254740992.0, 9007199254740993.0, 1e16, 1e16 + 2, 1e22, 1.7976931348623157e308,
    float("inf"), float("-inf"), float("nan"), 3304370761833.8716, 7.000000000000001,
]  # fmt: skip
STRINGS = [
    "male",
    "",
    "  ",
    "café",
    "漢字 😀",
    "\u2028",
    "NA",
    "null",
    "1.0",
    "35",
    "tab\there",
    "\x00",
    "é" * 300,
]


def seen(key: str, counts: dict[str, int]) -> Any:
    """Count the fast path's successes under ``key`` (the tests assert it ran)."""

    def wrap(function: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            result = function(*args, **kwargs)
            counts[key] += result is not None
            return result

        return counted

    return wrap


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts = {"arrow_cells": 0, "json_cells": 0}
    monkeypatch.setattr(cells_module, "arrow_cells", seen("arrow_cells", counts)(cells_module.arrow_cells))
    monkeypatch.setattr(batches_module, "json_cells", seen("json_cells", counts)(cells_module.json_cells))
    return counts


def cells_of(frame: pd.DataFrame) -> tuple[list[str], list[list[Any]], dict[int, Any]]:
    """A table's column names, cells (NaN spelled out: it is not equal to itself) and bad rows."""
    rows = [
        ["<NaN>" if isinstance(v, float) and v != v else v for v in row]
        for row in frame.astype(object).values.tolist()
    ]
    return [str(c) for c in frame.columns], rows, dict(frame.attrs.get(MALFORMED_ROWS, {}))


def results_of(frame: pd.DataFrame, first_row: int) -> Any:
    """What validation makes of a batch: the model's values, the given values, ids and rejects."""
    try:
        applications = validate(frame, source="f", first_row=first_row, on_unknown="unknown")
    except InputError as error:
        return str(error)
    return (
        applications.frame.to_dict("split"),
        applications.given.astype(object).to_dict("split"),
        applications.ids.tolist(),
        applications.reject_messages(),
    )


def assert_same(new: Iterator[Any], reference: Iterator[Any]) -> None:
    """Batch by batch the same first row, cells, bad rows and validation, or the same error."""
    got, expected = outcome(new), outcome(reference)
    assert got == expected


def outcome(batches: Iterator[Any]) -> Any:
    out: list[Any] = []
    try:
        for first_row, frame in batches:
            out.append((first_row, cells_of(frame), results_of(frame, first_row)))
    except InputError as error:
        out.append(("error", str(error)))
    return out


def new_batches(path: Path, batch_rows: int) -> Iterator[tuple[int, pd.DataFrame]]:
    return ((b.first_row, b.table) for b in iter_tables(path, batch_rows=batch_rows))


# --------------------------------------------------------------------------------------------
# Parquet


def parquet_reference(path: Path, batch_rows: int) -> Iterator[tuple[int, pd.DataFrame]]:
    parquet = pq.ParquetFile(path)
    check_header(parquet.schema_arrow.names, str(path), GERMAN)
    first_row = 1
    for record_batch in parquet.iter_batches(batch_size=batch_rows):
        table = table_cells(record_batch.to_pandas())
        if len(table):
            yield first_row, table
        first_row += len(table)


def hostile_columns(rng: random.Random, rows: int) -> dict[str, pa.Array]:
    """Typed columns of every kind Parquet holds, with the values that tell the rules apart."""

    def pick(pool: list[Any], nulls: bool) -> list[Any]:
        return [None if nulls and rng.random() < 0.2 else rng.choice(pool) for _ in range(rows)]

    ints = [0, 1, -1, 35, 2**31 - 1, -(2**31), 2**53 - 1, 2**53, 2**53 + 1, 2**62 + 1, 2**63 - 1, -(2**63)]
    randoms = [rng.uniform(-1e12, 1e12) * 10.0 ** rng.randint(-12, 6) for _ in range(30)]
    columns = {
        "Age": pa.array(pick([19, 35, 75, 0, 200, -3], False), pa.int64()),
        "Sex": pa.array(pick(["male", "female", "", "unknown?"], True), pa.string()),
        "Job": pa.array(pick([0, 1, 2, 3, 7], rng.random() < 0.5), pa.int8()),
        "Housing": pa.array(pick(["own", "rent", "free"], False)).dictionary_encode(),
        "Saving accounts": pa.array(pick(["little", "rich", ""], True), pa.large_string()),
        "Checking account": pa.array(pick(["little", "moderate", None], True), pa.string()),
        "Credit amount": pa.array(pick([*FLOATS, *randoms], rng.random() < 0.5), pa.float64()),
        "Duration": pa.array(pick(ints, rng.random() < 0.5), pa.int64()),
        "Purpose": pa.array(pick(["car", "radio/TV", *STRINGS], True), pa.string()),
        "i32 nulls": pa.array(pick([1, -7, 2**31 - 1], True), pa.int32()),
        "u64": pa.array(pick([0, 2**64 - 1, 2**63, 5], rng.random() < 0.5), pa.uint64()),
        "f32": pa.array(pick([0.1, 1.5, 16777217.0, -0.0, float("nan"), 3.4e38], True), pa.float32()),
        "bool": pa.array(pick([True, False], rng.random() < 0.5), pa.bool_()),
        "null": pa.nulls(rows),
        "dict ints": pa.array(pick([1, 2**60, -5], True), pa.int64()).dictionary_encode(),
        "dict floats": pa.array(pick([1.5, 2.0, -0.0], True), pa.float64()).dictionary_encode(),
        "list": pa.array(pick([[1, 2], [], [3]], True), pa.list_(pa.int64())),
        "struct": pa.array(pick([{"a": 1, "b": "x"}, {"a": None, "b": ""}], True)),
        "timestamp": pa.array(pick([datetime(2020, 1, 2, 3, 4, 5), datetime(1999, 12, 31)], True)),
        "date": pa.array(pick([date(2020, 1, 2)], True)),
        "decimal": pa.array(
            pick([decimal.Decimal("1.50"), decimal.Decimal("35")], True), pa.decimal128(10, 2)
        ),
        "binary": pa.array(pick([b"abc", b"\xff", b""], True), pa.binary()),
        "f16": pa.array(np.array(pick([0.5, 1.0, 65504.0], False), dtype=np.float16)),
        "string_view": pa.array(pick(["a", "é", ""], True), pa.string_view()),
        "": pa.array(pick(["row", "", "7"], False)),
    }
    chosen = rng.sample(list(columns)[9:], rng.randint(0, len(columns) - 9))
    return {name: columns[name] for name in [*list(columns)[:9], *chosen]}


def parquet_cases(tmp_path: Path) -> Iterator[Path]:
    for seed in range(8):
        rng = random.Random(seed)
        rows = rng.choice([1, 5, 40, 257])
        path = tmp_path / f"hostile_{seed}.parquet"
        pq.write_table(pa.table(hostile_columns(rng, rows)), path, row_group_size=rng.choice([3, 100, 1000]))
        yield path
    # What pandas writes: its metadata restores extension types (missing as <NA>), an index, categories.
    frame = pd.DataFrame(
        {
            "Age": pd.array([30, None, 2**60], dtype="Int64"),
            "Sex": pd.array(["male", None, "female"], dtype="string"),
            "Housing": pd.Categorical(["own", "rent", None]),
            "Credit amount": [1.5, np.nan, 1e16],
            "Duration": [1, 2, 3],
            "flag": pd.array([True, None, False], dtype="boolean"),
        },
        index=pd.Index([10, 20, 30], name="application"),
    )
    frame.to_parquet(tmp_path / "pandas_index.parquet")
    yield tmp_path / "pandas_index.parquet"
    frame.reset_index(drop=True).to_parquet(tmp_path / "pandas_range.parquet")
    yield tmp_path / "pandas_range.parquet"
    plain = pd.DataFrame({"Age": [30, 40], "Duration": [1.0, 2.5], "Sex": ["male", "female"]})
    plain.to_parquet(tmp_path / "pandas_numeric_names.parquet")
    plain.set_axis([0, 1, 2], axis=1).to_parquet(tmp_path / "pandas_int_names.parquet")
    yield tmp_path / "pandas_numeric_names.parquet"
    yield tmp_path / "pandas_int_names.parquet"
    pq.write_table(
        pa.table({"": ["a", "b"], " ": ["c", "d"], "Age": [1, 2]}), tmp_path / "blank_names.parquet"
    )
    yield tmp_path / "blank_names.parquet"


def test_parquet_cells_are_cell_texts(tmp_path: Path, fast: dict[str, int]) -> None:
    for path in parquet_cases(tmp_path):
        for batch_rows in batch_sizes(path):
            assert_same(new_batches(path, batch_rows), parquet_reference(path, batch_rows))
        # The file read whole (a table of several row groups, not a record batch) too.
        assert cells_of(read_table(path)) == cells_of(table_cells(pq.read_table(path).to_pandas()))
    assert fast["arrow_cells"] > 100


def test_float_cells_are_cell_texts() -> None:
    """The float rule on its own, on random floats of every magnitude and the boundaries."""
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.standard_normal(20_000) * 10.0 ** rng.integers(-30, 30, 20_000),
            np.round(rng.uniform(-1e10, 1e10, 20_000), 2),
            np.nextafter(
                np.array([1e-4, 1e-4, 1e9, 1e9, 2.0**53, 2.0**53]), np.array([0, 1, 0, 2e9, 0, 1e300])
            ),
            np.array(FLOATS),
        ]
    )
    got = float_cells(pa.array(values)).to_pylist()
    assert got == [cell_text(float(v)) for v in values]
    with_nulls = float_cells(pa.array([1.5, None, -0.0], pa.float64())).to_pylist()
    assert with_nulls == ["1.5", "", "-0"]


# --------------------------------------------------------------------------------------------
# JSON Lines


def json_lines_reference(path: Path, batch_rows: int) -> Iterator[tuple[int, pd.DataFrame]]:
    """The batched JSON Lines reader before Arrow: ``json`` a line at a time, two passes. One fix:
    a batch of bad lines only kept its rows (it made an empty table, dropped, its rows' numbers
    taken by the next ones). A file whose first line is not an object is read whole, by the
    same code as before: it is compared with itself."""
    if not batches_module._is_json_lines(path):
        yield from new_batches(path, batch_rows)
        return
    try:
        yield from _json_lines_reference(path, batch_rows)
    except UnicodeDecodeError:
        raise _not_utf8(path, csv_rows=False) from None


def _json_lines_reference(path: Path, batch_rows: int) -> Iterator[tuple[int, pd.DataFrame]]:
    def lines() -> Iterator[tuple[dict[str, Any], tuple[str, str] | None]]:
        with path.open("rb") as handle:
            for line_number, raw in enumerate(handle, start=1):
                line = raw.decode("utf-8-sig" if line_number == 1 else "utf-8")
                if line.strip():
                    yield json_line(line, line_number)

    names: list[str] = []
    count = good = 0
    first_bad: tuple[int, str] | None = None
    for record, bad in lines():
        count += 1
        if bad is not None:
            first_bad = first_bad or (count, bad[1])
            continue
        good += 1
        names.extend(key for key in record if key not in names)
    if count == 0:
        raise InputError("no applications (empty list)", source=str(path))
    if good == 0 and first_bad is not None:
        raise InputError(first_bad[1], source=str(path), row=first_bad[0])
    check_header(names, str(path), GERMAN)
    records = lines()
    first_row = 1
    while chunk := list(itertools.islice(records, batch_rows)):
        table = objects_table([record for record, _ in chunk], str(path), GERMAN)
        table = table.reindex(columns=names, fill_value="")
        if len(table) == 0 and names:  # the fix
            table = pd.DataFrame({name: [""] * len(chunk) for name in names})
        malformed = {i: bad for i, (_, bad) in enumerate(chunk, start=1) if bad is not None}
        if malformed:
            table.attrs[MALFORMED_ROWS] = malformed
        if len(table):
            yield first_row, table
        first_row += len(table)


def application(rng: random.Random) -> dict[str, Any]:
    record: dict[str, Any] = {
        "Age": rng.choice([19, 35, 75, 35.0, "35", None, 200, -0.0]),
        "Sex": rng.choice(["male", "female", None]),
        "Job": rng.randint(0, 3),
        "Housing": rng.choice(["own", "rent", "free"]),
        "Saving accounts": rng.choice(["little", "rich", None, ""]),
        "Checking account": rng.choice(["little", "moderate"]),
        "Credit amount": rng.choice([1500, 250.5, 1e3, 9007199254740991, 0.1]),
        "Duration": rng.randint(1, 72),
        "Purpose": rng.choice(["car", "radio/TV", *STRINGS]),
    }
    if rng.random() < 0.3:
        del record[rng.choice(list(record))]
    if rng.random() < 0.1:
        record["late key " + rng.choice(["a", "b", "é"])] = rng.choice([1, "x", None, 2.5, True])
    if rng.random() < 0.2:
        record = dict(rng.sample(list(record.items()), len(record)))
    return record


HOSTILE_LINES = [
    "", "   ", "\t\r", "\x0c", "\u3000", "not json", "{", '{"Age": 1', '{"Age": "x', "5", "null", "[1, 2]",
    '"text"', '{"Age": 1} {"Age": 2}', '{"Age": 1}, {"Age": 2}', '  {"Age": 30, "Job": 1}  ',
    '{"Age": NaN}', '{"Age": Infinity, "Job": -Infinity}', '{"Age": 1e400}', '{"Age": -0}', '{"Age": -0.0}',
    '{"Age": 123456789012345678901234567890}', '{"Age": 9223372036854775808}', '{"Age": 18446744073709551616}',
    '{"Age": ' + "9" * 5000 + "}", '{"Age": 1, "Age": 2}', '{"Age": 1, "\\u0041ge": 2}',
    '{"Sex": "\\ud800"}', '{"Sex": "\\ud83d\\ude00"}', '{"Sex": "\\u00e9\\n\\"\\/\\u0000"}',
    '{"Sex": "raw\ttab"}', '{"Age": [1, 2]}', '{"Age": {"a": 1}}', '{"Age": true}', '{"Age": "2020-01-02"}',
    '{"Purpose": "2020-01-02T03:04:05"}', '{"": 1, "Age": 2}', "{}", '{"input_data": null}',
    '{"input_data": 5, "Age": 3}', '{"input_data": {"input_data": {"Age": 4}}}', '{"input_data": {}}',
    '{"input_data": {"Age": 30, "Sex": "male"}, "p": 0.5, "deep": ' + "[" * 40 + "]" * 40 + "}",
    "[" * 3000 + "]" * 3000, '{"Age": ' + "[" * 3000 + "]" * 3000 + "}",
    '{"input_data": {"Age": 1}, "x": ' + "[" * 3000 + "]" * 3000 + "}", '{"Age": 1.0e2, "Job": 1E0}',
    '{"Age": 30}\r', '{"Age": 0.30000000000000004, "Job": 5e-324}', '{"Credit amount": 1e16}',
    '{"Credit amount": 12345678901234567}',
]  # fmt: skip


def json_lines_case(rng: random.Random, wrapped: bool) -> bytes:
    lines = []
    for _ in range(rng.choice([1, 3, 20, 150])):
        if rng.random() < rng.choice([0.0, 0.02, 0.3]):
            lines.append(rng.choice(HOSTILE_LINES))
        elif wrapped:
            lines.append(
                json.dumps(
                    {"input_data": application(rng), "probability": rng.random(), "t": "2026-12-05T07:07:51"}
                )
            )
        else:
            lines.append(json.dumps(application(rng), ensure_ascii=rng.random() < 0.5))
    text = "\n".join(lines) + rng.choice(["\n", "", "\n\n"])
    if rng.random() < 0.1:
        text = text.replace("\n", "\r\n")
    data = text.encode("utf-8", "surrogatepass")
    return (b"\xef\xbb\xbf" if rng.random() < 0.2 else b"") + data


def json_lines_cases(tmp_path: Path) -> Iterator[Path]:
    for seed in range(10):
        rng = random.Random(seed)
        path = tmp_path / f"hostile_{seed}.jsonl"
        path.write_bytes(json_lines_case(rng, wrapped=seed % 3 == 0))
        if path.read_bytes().lstrip(b"\xef\xbb\xbf").strip():
            yield path
    specials = {
        "bad_utf8": b'{"Age": 30}\n{"Sex": "\xff"}\n',
        "bom_twice": b'\xef\xbb\xbf\xef\xbb\xbf{"Age": 30}\n{"Age": 31}\n',
        "bom_later": b'{"Age": 30}\n\xef\xbb\xbf{"Age": 31}\n',
        "all_bad": b"nope\n{\n",
        "empty_objects": b"{}\n{}\n",
        "empty_and_bad": b"{}\nnope\n",
        "blank_and_objects": b'\n\n{"Age": 30}\n\n\n{"Age": 31}\n',
        "late_key": b"".join(b'{"Age": %d}\n' % i for i in range(200)) + b'{"Age": 1, "Job": 2}\n',
        "floats_then_ints": b'{"Credit amount": 1.5}\n' + b'{"Credit amount": 3}\n' * 10,
        "duplicate_meaning": b'{"Age": 30, "age ": 31}\n',
        "nested_wrapper_key": b'{"input_data": {"input_data": {"Age": 4}, "Job": 1}}\n{"Age": 5}\n',
    }
    # every hostile line at least once, whatever the random files drew, each after a plain application
    rng = random.Random(99)
    every = [f"{json.dumps(application(rng))}\n{line}\n" for line in HOSTILE_LINES]
    specials["every_hostile_line"] = "".join(every).encode("utf-8", "surrogatepass")
    for name, data in specials.items():
        (tmp_path / f"{name}.jsonl").write_bytes(data)
        yield tmp_path / f"{name}.jsonl"


def test_json_lines_cells_are_the_per_line_readers(tmp_path: Path, fast: dict[str, int]) -> None:
    for path in json_lines_cases(tmp_path):
        for batch_rows in batch_sizes(path):
            assert_same(new_batches(path, batch_rows), json_lines_reference(path, batch_rows))
    assert fast["json_cells"] > 100


def test_a_batch_of_bad_lines_keeps_its_rows(tmp_path: Path) -> None:
    """Before, a batch of bad lines only made an empty table, and the next rows took its numbers."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"Age": 30}\nnope\n{"Age": 31}\n')
    batches = [
        (b.first_row, len(b.table), b.table.attrs.get(MALFORMED_ROWS))
        for b in iter_tables(path, batch_rows=1)
    ]
    assert batches == [
        (1, 1, None),
        (2, 1, {1: ("nope", "invalid JSON on line 2 (Expecting value)")}),
        (3, 1, None),
    ]


def test_a_line_nested_past_arrows_reach_is_refused_by_name_not_a_crash(tmp_path: Path) -> None:
    """A JSON Lines value 30,000 levels deep once crashed ``predict`` with a segmentation fault in
    Arrow's reader (exit 139, a partial file left behind); now the line goes to ``json``, which
    refuses it by name, and its neighbours are read. In a child process: a crash must not take
    the test run with it."""
    import subprocess
    import sys

    good = json.dumps({"Age": 30, "Job": 1})
    path = tmp_path / "deep.jsonl"
    path.write_text(
        f'{good}\n{{"Age": 31, "note": {"[" * 30_000}{"]" * 30_000}}}\n{good}\n', encoding="utf-8"
    )
    code = (
        "import sys; from pathlib import Path; from preauth.applications.batches import iter_tables\n"
        "for b in iter_tables(Path(sys.argv[1])):\n"
        "    print(b.first_row, len(b.table), sorted(b.table.attrs.get('preauth.malformed_rows', {}).items()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])
    assert done.stdout.startswith("1 3 [(2, (")
    assert "JSON nested too deeply" in done.stdout
