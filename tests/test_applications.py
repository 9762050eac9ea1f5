"""Reading and validating applications: formats, spellings, and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from preauth.applications import (
    FIELDS,
    UNKNOWN,
    applications_from_csv_text,
    applications_from_records,
    feature_columns,
    read_applications,
)
from preauth.errors import InputError

HEADER = "Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose"
GOOD = "30,male,2,own,little,moderate,1000,12,car"


def write(tmp_path: Path, text: str, name: str = "apps.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_bundled_data_reads_whole(bundled_data: Path) -> None:
    apps = read_applications(bundled_data)
    assert len(apps) == 1000 and not apps.rejects
    assert (apps.frame["Saving accounts"] == UNKNOWN).sum() == 183
    assert (apps.frame["Checking account"] == UNKNOWN).sum() == 394
    assert apps.ids.iloc[:3].tolist() == ["0", "1", "2"]  # the leading unnamed index column
    assert apps.given["Saving accounts"].isna().sum() == 183  # as given: missing stays missing


def test_original_raw_input_reads_as_it_is(original_dir: Path, bundled_data: Path) -> None:
    raw = read_applications(original_dir / "credir_risk_reto.csv")  # semicolons, BOM, 'Savings account'
    ours = read_applications(bundled_data)
    assert len(raw) == 1000 and not raw.rejects
    assert raw.columns["Saving accounts"] == "Savings account"
    pd.testing.assert_frame_equal(raw.frame, ours.frame)


@pytest.mark.parametrize(
    "spelling", ["Saving accounts", "saving_accounts", "SAVING ACCOUNTS", "Savings account"]
)
def test_column_spellings(tmp_path: Path, spelling: str) -> None:
    path = write(tmp_path, HEADER.replace("Saving accounts", spelling) + "\n" + GOOD + "\n")
    apps = read_applications(path)
    assert apps.frame["Saving accounts"].tolist() == ["little"]
    assert list(apps.given.columns)[4] == spelling


@pytest.mark.parametrize("token", ["", "NA", "none", "null", "NULL"])
def test_missing_balances_become_unknown(tmp_path: Path, token: str) -> None:
    path = write(tmp_path, f"{HEADER}\n30,male,2,own,{token},{token},1000,12,car\n")
    apps = read_applications(path)
    assert apps.frame.iloc[0]["Saving accounts"] == UNKNOWN
    assert apps.frame.iloc[0]["Checking account"] == UNKNOWN
    assert apps.given.iloc[0]["Saving accounts"] is None or pd.isna(apps.given.iloc[0]["Saving accounts"])


def test_every_format_reads_the_same(tmp_path: Path) -> None:
    rows = [GOOD, "45,female,3,rent,,rich,7882,42,business"]
    reference = read_applications(write(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n")).frame
    variants = [
        write(tmp_path, (HEADER + "\n" + "\n".join(rows)).replace(",", ";"), "semi.csv"),
        write(tmp_path, "\ufeff" + HEADER + "\r\n" + "\r\n".join(rows) + "\r\n", "bom_crlf.csv"),
    ]
    records = pd.read_csv(tmp_path / "apps.csv", dtype=str, keep_default_na=False).to_dict(orient="records")
    for record in records:
        record["Age"] = int(record["Age"])
        record["Saving accounts"] = record["Saving accounts"] or None
    variants.append(write(tmp_path, json.dumps(records), "array.json"))
    variants.append(write(tmp_path, "\n".join(json.dumps(r) for r in records), "lines.jsonl"))
    parquet = tmp_path / "apps.parquet"
    pd.DataFrame(records).to_parquet(parquet)
    variants.append(parquet)
    for path in variants:
        pd.testing.assert_frame_equal(read_applications(path).frame, reference, obj=str(path.name))
    single = read_applications(write(tmp_path, json.dumps(records[0]), "one.json"))
    assert len(single) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file is empty"),
        (HEADER + "\n", "no applications (header only)"),
        (HEADER.replace("Age,", "") + "\n" + GOOD.split(",", 1)[1], "missing required column 'Age'"),
        (HEADER + ",Age\n" + GOOD + ",30\n", "duplicate columns 'Age' and 'Age'"),
        (HEADER.replace("Saving accounts", "Saving accounts,saving_accounts") + "\n", "duplicate columns"),
    ],
)
def test_unusable_files_raise_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        read_applications(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("abc,male,2,own,little,little,1000,12,car", "Age", "'abc' is not a whole number"),
        ("17,male,2,own,little,little,1000,12,car", "Age", "17 is outside 18–100"),
        ("101,male,2,own,little,little,1000,12,car", "Age", "101 is outside 18–100"),
        ("30.5,male,2,own,little,little,1000,12,car", "Age", "'30.5' is not a whole number"),
        ("30,male,4,own,little,little,1000,12,car", "Job", "4 is outside 0–3"),
        ("30,male,2,own,little,little,0,12,car", "Credit amount", "0 is not positive"),
        ("30,male,2,own,little,little,-5,12,car", "Credit amount", "-5 is not positive"),
        ("30,male,2,own,little,little,1e20,12,car", "Credit amount", "1e20 is too large (at most 9,007,"),
        ("30,male,2,own,little,little,9e307,12,car", "Credit amount", "9e307 is too large"),
        ("30,male,2,own,little,little,1000,9223372036854775808,car", "Duration", "is too large"),
        ("30,male,2,own,little,little,1000,0,car", "Duration", "0 is not positive"),
        ("30,male,2,own,little,little,1000,,car", "Duration", "missing value"),
        ("30,male,2,castle,little,little,1000,12,car", "Housing", "'castle' is not one of: own, rent, free"),
        ("30,male,2,own,lots,little,1000,12,car", "Saving accounts", "'lots' is not one of"),
    ],
)
def test_bad_rows_are_rejected_with_reason_and_others_kept(
    tmp_path: Path, row: str, column: str, reason: str
) -> None:
    path = write(tmp_path, f"{HEADER}\n{GOOD}\n{row}\n{GOOD}\n")
    apps = read_applications(path)
    assert len(apps) == 2 and apps.frame.index.tolist() == [1, 3]
    [reject] = apps.rejects
    assert (reject.row, reject.column) == (2, column)
    assert reason in reject.reason
    assert reject.message(str(path)) == f"{path}, row 2, column '{column}': {reject.reason}"


def test_a_row_with_the_wrong_number_of_fields_is_rejected_and_others_kept(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\n{GOOD}\n{GOOD},extra\n{GOOD}\n30,male\n17{GOOD[2:]}\n{GOOD}\n")
    apps = read_applications(path)
    assert apps.frame.index.tolist() == [1, 3, 6]
    assert [(r.row, r.column) for r in apps.rejects] == [(2, None), (4, None), (5, "Age")]
    assert apps.rejects[0].message(str(path)) == f"{path}, row 2: has 10 fields, the header has 9"
    assert apps.rejects[1].reason == "has 2 fields, the header has 9"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "apps.csv",
            f"{HEADER}\n{GOOD}\n30,male,2,own,little,little,1000,12,caf\xe9\n".encode("latin-1"),
            "row 2",
        ),
        ("apps.csv", "\n".join([HEADER, *[GOOD] * 3000, GOOD + "\xe9"]).encode("latin-1"), "row 3001"),
        ("apps.json", '{"Age": 30, "Purpose": "caf\xe9"}'.encode("latin-1"), "not UTF-8"),
        ("apps.csv", HEADER.encode("utf-16"), "not UTF-8"),
    ],
)
def test_text_that_is_not_utf8_is_one_line(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        read_applications(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)
    assert "UTF-8" in str(caught.value) and "\n" not in str(caught.value)


def test_a_directory_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        read_applications(tmp_path)


def test_json_with_a_byte_order_mark_and_no_suffix_reads(tmp_path: Path) -> None:
    record = dict(zip(HEADER.split(","), GOOD.split(","), strict=True))
    path = write(tmp_path, "\ufeff" + json.dumps(record), "apps.txt")
    assert len(read_applications(path)) == 1


def test_on_unknown_reads_unknown_categories(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\n30,male,2,castle,lots,little,1000,12,car\n")
    assert len(read_applications(path).rejects) == 1
    apps = read_applications(path, on_unknown="unknown")
    assert not apps.rejects
    assert apps.frame.iloc[0]["Housing"] == UNKNOWN and apps.frame.iloc[0]["Saving accounts"] == UNKNOWN
    assert apps.given.iloc[0]["Housing"] == "castle"  # the result keeps what was given


def test_categories_match_case_insensitively(tmp_path: Path) -> None:
    apps = read_applications(write(tmp_path, f"{HEADER}\n30,MALE,2,Own,Little,MODERATE,1000,12,Radio/tv\n"))
    assert apps.frame.iloc[0][["Sex", "Housing", "Purpose"]].tolist() == ["male", "own", "radio/TV"]


def test_records_and_csv_text_front_doors() -> None:
    record = {f.key: f.example for f in FIELDS}  # snake_case keys are accepted too
    assert len(applications_from_records([record])) == 1
    no_header = applications_from_csv_text(GOOD + "\n" + GOOD + "\n")
    with_header = applications_from_csv_text(HEADER + "\n" + GOOD + "\n")
    assert len(no_header) == 2 and len(with_header) == 1
    with pytest.raises(InputError, match="needs 9 fields"):
        applications_from_csv_text("30,male,2\n")


def test_sex_is_out_of_the_model_by_default() -> None:
    assert "Sex" not in feature_columns()
    assert "Sex" in feature_columns(include=["Sex"])
    assert "Purpose" not in feature_columns(exclude=["Sex", "purpose"])
    with pytest.raises(InputError, match="unknown column 'Colour'"):
        feature_columns(exclude=["Colour"])


def test_a_missing_outcome_keeps_the_row(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER},Risk\n{GOOD},good\n{GOOD},\n{GOOD},maybe\n")
    apps = read_applications(path)
    assert apps.frame.index.tolist() == [1, 2]
    assert apps.frame["Risk"].iloc[0] == "good" and pd.isna(apps.frame["Risk"].iloc[1])
    assert [(r.row, r.column) for r in apps.rejects] == [(3, "Risk")]


DEEP = 100_000


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("array.json", "[" * DEEP + "]" * DEEP),
        ("object.json", '{"a":' * DEEP + "1" + "}" * DEEP),
        ("in_a_field.json", '[{"Age": ' + "[" * DEEP + "]" * DEEP + "}]"),
        ("just_under_the_limit.json", '[{"Age": ' + "[" * 990 + "]" * 990 + "}]"),
    ],
)
def test_deeply_nested_json_is_one_line(tmp_path: Path, name: str, text: str) -> None:
    path = write(tmp_path, text, name)
    with pytest.raises(InputError) as caught:
        read_applications(path)
    assert (
        str(caught.value) == f"{path}: JSON nested too deeply; an application is one object of plain values"
    )


def _line(**changes: object) -> str:
    record: dict[str, object] = dict(zip(HEADER.split(","), GOOD.split(","), strict=True))
    record.update(changes)
    return json.dumps(record)


def test_a_bad_json_line_is_a_rejected_row_and_the_others_are_read(tmp_path: Path) -> None:
    lines = [
        _line(Age=31),
        _line(Age=32)[:-1],  # cut short
        "",
        "[" * DEEP + "]" * DEEP,
        "42",
        _line(Age=35),
    ]
    path = write(tmp_path, "\n".join(lines) + "\n", "apps.jsonl")
    apps = read_applications(path)
    assert apps.frame.index.tolist() == [1, 5] and apps.frame["Age"].tolist() == [31, 35]
    assert [r.message(str(path)) for r in apps.rejects] == [
        f"{path}, row 2: invalid JSON on line 2 (Expecting ',' delimiter)",
        f"{path}, row 3: JSON nested too deeply; an application is one object of plain values",
        f"{path}, row 4: expected an application object on line 5",
    ]
    assert apps.rejects[0].value == lines[1] and len(apps.rejects[1].value or "") < 300


def test_json_lines_where_every_line_is_bad_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, _line()[:-1] + "\n" + _line()[:-1] + "\n", "apps.jsonl")
    with pytest.raises(InputError) as caught:
        read_applications(path)
    assert str(caught.value) == f"{path}: invalid JSON (Expecting ',' delimiter, line 2, column 1)"


def test_a_broken_json_array_is_one_line_naming_where(tmp_path: Path) -> None:
    path = write(tmp_path, "[\n" + _line() + ",\n" + _line()[:-1] + "\n]\n", "apps.json")
    with pytest.raises(InputError) as caught:
        read_applications(path)
    assert str(caught.value) == f"{path}: invalid JSON (Expecting ',' delimiter, line 4, column 1)"


def test_a_huge_bad_value_is_quoted_short(tmp_path: Path) -> None:
    huge = "9" * 100_000
    path = write(tmp_path, f"{HEADER}\n{huge},male,2,{'x' * 100_000},little,little,1000,12,car\n")
    (reject,) = read_applications(path).rejects
    assert reject.reason == f"'{'9' * 80}\u2026' is not a whole number"
    assert reject.value == "9" * 200 + "\u2026"
    housing = read_applications(
        write(tmp_path, f"{HEADER}\n30,male,2,{'x' * 100_000},little,little,1000,12,car\n")
    )
    assert housing.rejects[0].reason == f"'{'x' * 80}\u2026' is not one of: own, rent, free"


def test_a_pipe_or_a_device_is_refused_without_being_read(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "apps.csv"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    for path in (fifo, Path("/dev/null")):
        with pytest.raises(InputError) as caught:
            read_applications(path)
        assert str(caught.value) == (
            f"{path}: not a regular file (a pipe or a device); save the applications to a file"
        )


def test_a_csv_line_past_arrows_block_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "\n" + "a" * 50_000_000)
    with pytest.raises(InputError) as caught:
        read_applications(path)
    assert str(caught.value) == f"{path}: malformed CSV: a line longer than 16 MB"


@pytest.mark.parametrize("name", ["apps.json", "apps.jsonl"])
def test_an_integer_too_long_for_python_is_a_bad_value_not_a_crash(tmp_path: Path, name: str) -> None:
    lines = [_line(Age=31), _line(Age=32).replace('"Age": 32', '"Age": ' + "9" * 5000)]
    text = "[" + ",".join(lines) + "]" if name.endswith(".json") else "\n".join(lines)
    apps = read_applications(write(tmp_path, text, name))
    assert apps.frame["Age"].tolist() == [31]
    (reject,) = apps.rejects
    assert (reject.row, reject.column) == (2, "Age")
    assert reject.reason == f"'{'9' * 80}\u2026' is not a whole number"


def test_a_parquet_file_with_a_column_twice_is_named_as_such(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "apps.parquet"
    pq.write_table(pa.table([pa.array([30]), pa.array([31])], names=["Age", "AGE"]), path)
    with pytest.raises(InputError) as caught:
        read_applications(path)
    assert str(caught.value) == f"{path}: duplicate columns 'Age' and 'AGE' (both mean 'Age')"
    pq.write_table(pa.table([pa.array([30]), pa.array([31])], names=["Age", "Age"]), path)
    with pytest.raises(InputError, match="duplicate columns 'Age' and 'Age'"):
        read_applications(path)


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("0x10", "'0x10' is not a whole number"),  # Arrow's cast to int64 alone would read 16
        ("1_000", "'1_000' is not a whole number"),
        ("\u0663\u0660", "'\u0663\u0660' is not a whole number"),  # Arabic-Indic digits
        ("", "missing value"),
        ("17", "17 is outside 18\u2013100"),
        ("9" * 25, "too large"),
        ("-0", "-0 is outside 18\u2013100"),
    ],
)
def test_a_bad_number_among_plain_digits_is_still_rejected_in_every_batch(
    tmp_path: Path, cell: str, reason: str
) -> None:
    """A column of plain digits skips the per-value checks; one bad cell sends its batch back to them."""
    from preauth.applications.batches import iter_applications

    bad = GOOD.replace("30,", f"{cell},", 1)
    path = write(tmp_path, "\n".join([HEADER, GOOD, GOOD, GOOD, bad, GOOD]) + "\n")
    for batch_rows in (2, 100):
        batches = list(iter_applications(path, batch_rows=batch_rows))
        [reject] = [r for b in batches for r in b.rejects]
        assert (reject.row, reject.column) == (4, "Age") and reason in reject.reason
        frame = pd.concat([b.frame for b in batches])
        given = pd.concat([b.given for b in batches])
        assert frame.index.tolist() == [1, 2, 3, 5]
        assert frame["Age"].tolist() == [30.0] * 4 and frame["Age"].dtype == "float64"
        assert given["Age"].tolist() == [30] * 4 and given["Age"].dtype == "int64"


@pytest.mark.parametrize(
    ("cell", "age"),
    [("+31", 31), (" 31 ", 31), ("031", 31), ("31.0", 31), ("3.1e1", 31)],
)
def test_a_number_written_otherwise_reads_as_the_same_number(tmp_path: Path, cell: str, age: int) -> None:
    """Cells that are not plain digits take the full checks, and read as the plain digits would."""
    path = write(tmp_path, "\n".join([HEADER, GOOD, GOOD.replace("30,", f"{cell},", 1)]) + "\n")
    apps = read_applications(path)
    assert not apps.rejects
    assert apps.frame["Age"].tolist() == [30.0, float(age)]
    assert apps.given["Age"].tolist() == [30, age]


def test_a_batch_not_utf8_is_refused_and_one_that_is_reads_its_text(tmp_path: Path) -> None:
    """Blocks of a large file skip Arrow's UTF-8 check only when Python's decoder passed them."""
    from preauth.applications.batches import iter_applications

    rows = [GOOD] * 5 + [GOOD.replace("car", "caf\u00e9")]
    good = write(tmp_path, "\n".join([HEADER, *rows]) + "\n", "good.csv")
    [reject] = [r for b in iter_applications(good, batch_rows=2) for r in b.rejects]
    assert (reject.row, reject.column, reject.value) == (6, "Purpose", "caf\u00e9")
    bad = write(tmp_path, "\n".join([HEADER, *rows]) + "\n", "bad.csv", encoding="latin-1")
    with pytest.raises(InputError) as caught:
        list(iter_applications(bad, batch_rows=2))
    assert str(caught.value) == (
        f"{bad}, row 6: not UTF-8 text (byte 0xe9 on line 7); save the file as UTF-8"
    )


def test_a_result_object_is_unwrapped_once_whatever_the_door(tmp_path: Path) -> None:
    """A results file's object gives its application (``input_data``) in a JSON array, in JSON
    Lines read whole or a batch at a time, and in a request. An object wrapped twice is unwrapped
    once at every door, so every door refuses that row alike (no application field in it) and
    scores its neighbour: JSON Lines used to unwrap it twice and score the inner application, and
    a request used to score it with every field empty."""
    from preauth.applications.batches import iter_applications
    from preauth.service.intake import check_records

    values = [30, "male", 2, "own", "little", "moderate", 1000, 12, "car"]
    application = dict(zip(HEADER.split(","), values, strict=True))
    result = {"input_data": application, "probability_fraud": 0.2, "is_fraud": False}
    twice = {"input_data": result}

    def lines(objects: list[Any], name: str) -> Path:
        return write(tmp_path, "\n".join(map(json.dumps, objects)), name)

    doors = {
        "array": lambda o: read_applications(write(tmp_path, json.dumps(o), "a.json")).frame["Age"].tolist(),
        "lines": lambda o: read_applications(lines(o, "a.jsonl")).frame["Age"].tolist(),
        "batches": lambda o: [
            age
            for batch in iter_applications(lines(o, "b.jsonl"), batch_rows=1)
            for age in batch.frame["Age"]
        ],
        "request": lambda o: [i.values["Age"] for i in check_records(o).accepted],
    }
    for objects, expected in (([result, application], [30, 30]), ([twice, application], [30])):
        for door, read in doors.items():
            assert read(objects) == expected, door
    refused = check_records([twice, application], all_fields=True).problems
    assert {(p.row, p.reason) for p in refused} == {(1, "missing value")}
    assert "Age" in {p.column for p in refused}


def test_an_element_of_a_json_array_that_is_not_an_object_is_one_rejected_row(tmp_path: Path) -> None:
    """As a bad line of JSON Lines: its neighbours are read, it is rejected with its place."""
    good = dict(
        zip(HEADER.split(","), [30, "male", 2, "own", "little", "moderate", 1000, 12, "car"], strict=True)
    )
    path = write(tmp_path, json.dumps([good, None, 5, {**good, "Age": 41}]), "apps.json")
    read = read_applications(path)
    assert read.frame["Age"].tolist() == [30, 41]
    assert read.reject_messages() == [
        f"{path}, row 2: expected an application object",
        f"{path}, row 3: expected an application object",
    ]
    with pytest.raises(InputError, match="row 1: expected an application object"):
        read_applications(write(tmp_path, "[1, null]", "none.json"))
