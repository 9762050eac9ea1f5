"""The command line against hostile files: one line naming file, row and column, exit 2, no traceback.

Run in-process with click's runner (fast): an exception other than the CLI's own exit, or any
warning (``filterwarnings = error`` below), fails the test, as a traceback or a numpy
RuntimeWarning would reach a user's terminal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from preauth.cli import cli

pytestmark = pytest.mark.filterwarnings("error")

NUMBERS = ("Age", "Job", "Credit amount", "Duration")
BIG_ROW = 3
"""The row (counting data rows from 1) that gets the hostile value."""


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def assert_one_line_each(result: Result) -> list[str]:
    """Exit 2 through the CLI's own exit, and every stderr line a ``preauth:`` line: no traceback."""
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("preauth: ") for line in lines), result.stderr
    for leak in ("Traceback", "Warning", ".py", "site-packages"):
        assert leak not in result.stderr, result.stderr
    return lines


@pytest.fixture(scope="module")
def labelled(bundled_risk: Path) -> pd.DataFrame:
    """200 labelled applications as text cells; the labels are the real outcomes, which is enough here."""
    frame = pd.read_csv(bundled_risk, dtype=str, keep_default_na=False).head(200)
    frame = frame.drop(columns=[frame.columns[0]])
    frame["target"] = frame["Risk"] + " risk"
    return frame


def _typed(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (int(v) if k in NUMBERS and v.lstrip("-").isdigit() else (v or None)) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def _json_with(frame: pd.DataFrame, column: str, literal: str) -> list[str]:
    """One JSON text per row, the hostile value written as the literal given (so 1e20 stays 1e20)."""
    lines = [json.dumps(r) for r in _typed(frame)]
    record = _typed(frame)[BIG_ROW - 1]
    record[column] = "@@"
    lines[BIG_ROW - 1] = json.dumps(record).replace('"@@"', literal)
    return lines


def _parquet_with(frame: pd.DataFrame, column: str, value: Any, kind: pa.DataType) -> pa.Table:
    arrays = {}
    for name in frame.columns:
        if name in NUMBERS:
            values: list[Any] = [int(v) for v in frame[name]]
            if name == column:
                values[BIG_ROW - 1] = value
            arrays[name] = pa.array(values, type=kind if name == column else pa.int64())
        else:
            arrays[name] = pa.array([v or None for v in frame[name]], type=pa.string())
    return pa.table(arrays)


Writer = Callable[[pd.DataFrame, Path, str, str], Path]


def csv_file(frame: pd.DataFrame, tmp: Path, column: str, text: str) -> Path:
    frame = frame.copy()
    frame.loc[BIG_ROW - 1, column] = text
    frame.to_csv(path := tmp / "apps.csv", index=False)
    return path


def semicolon_file(frame: pd.DataFrame, tmp: Path, column: str, text: str) -> Path:
    frame = frame.copy()
    frame.loc[BIG_ROW - 1, column] = text
    frame.to_csv(path := tmp / "apps.csv", index=False, sep=";")
    return path


def json_array_file(frame: pd.DataFrame, tmp: Path, column: str, text: str) -> Path:
    (path := tmp / "apps.json").write_text("[" + ",\n".join(_json_with(frame, column, text)) + "]")
    return path


def json_lines_file(frame: pd.DataFrame, tmp: Path, column: str, text: str) -> Path:
    (path := tmp / "apps.jsonl").write_text("\n".join(_json_with(frame, column, text)) + "\n")
    return path


def parquet_file(frame: pd.DataFrame, tmp: Path, column: str, text: str) -> Path:
    number: Any = float(text) if any(c in text for c in ".eE") else int(text)
    kind = pa.float64() if isinstance(number, float) else pa.uint64() if number >= 2**63 else pa.int64()
    pq.write_table(_parquet_with(frame, column, number, kind), path := tmp / "apps.parquet")
    return path


TEXT_FORMATS: dict[str, Writer] = {
    "csv": csv_file,
    "semicolon": semicolon_file,
    "json": json_array_file,
    "jsonl": json_lines_file,
}
HUGE = ("100000000000000000000", "1e20", "9e307", "-1e20", "9223372036854775808")
PARQUET = ("9223372036854775807", "-9223372036854775808", "18446744073709551615", "1e20", "9e307", "-1e20")
CASES = [(fmt, v) for fmt in TEXT_FORMATS for v in HUGE] + [("parquet", v) for v in PARQUET]
WRITERS: dict[str, Writer] = {**TEXT_FORMATS, "parquet": parquet_file}


def _command(name: str, source: Path, out: Path, models: Path) -> list[str | Path]:
    return {
        "prepare": ["prepare", source, "-o", out / "prepared.csv"],
        "predict": ["--models-dir", models, "predict", source, "-o", out],
        "agreement": ["agreement", source],
        "train": [
            "--models-dir",
            out / "models",
            "train",
            source,
            "--trials",
            "1",
            "--folds",
            "2",
            "--no-progress",
        ],
    }[name]


def _check_refused(result: Result, source: Path, column: str, out: Path, value: str) -> None:
    lines = assert_one_line_each(result)
    rejected = [line for line in lines if line.startswith("preauth: rejected: ")]
    assert len(rejected) == 1, lines
    assert rejected[0].startswith(f"preauth: rejected: {source}, row {BIG_ROW}, column '{column}': ")
    assert "is too large (at most 9,007,199,254,740,991)" in rejected[0]
    if "9223372036854775" in value:
        return  # the value given is int64's own limit, quoted in reasons
    for written in out.glob("*"):
        if written.suffix in {".csv", ".json"} and ".rejects." not in written.name:
            assert "9223372036854775" not in written.read_text(), written  # never wrapped to int64


@pytest.mark.parametrize("command", ["prepare", "predict", "agreement"])
@pytest.mark.parametrize(("fmt", "value"), CASES)
def test_numbers_past_2_53_are_refused_in_every_format(
    tmp_path: Path, labelled: pd.DataFrame, small_models_dir: Path, command: str, fmt: str, value: str
) -> None:
    source = WRITERS[fmt](labelled, tmp_path, "Credit amount", value)
    out = tmp_path / "out"
    result = invoke(*_command(command, source, out, small_models_dir))
    _check_refused(result, source, "Credit amount", out, value)
    if command == "prepare":  # the other rows are kept
        assert len(pd.read_csv(out / "prepared.csv")) == len(labelled) - 1
    if command == "predict":
        (results,) = out.glob("inference_results_*.json")
        assert len(json.loads(results.read_text())) == len(labelled) - 1


@pytest.mark.parametrize(
    ("fmt", "value"),
    [("csv", "1e20"), ("jsonl", "100000000000000000000"), ("parquet", "-9223372036854775808")],
)
def test_train_refuses_the_row_names_it_and_exits_2(
    tmp_path: Path, labelled: pd.DataFrame, small_models_dir: Path, fmt: str, value: str
) -> None:
    source = WRITERS[fmt](labelled, tmp_path, "Age", value)
    out = tmp_path / "out"
    result = invoke(*_command("train", source, out, small_models_dir))
    _check_refused(result, source, "Age", out, value)
    assert (out / "models" / "v1" / "bundle.json").is_file()  # trained on the other rows
    assert f"{len(labelled) - 1} used" in result.stdout


def test_agreement_with_every_row_refused_is_one_line(tmp_path: Path, labelled: pd.DataFrame) -> None:
    source = tmp_path / "one.json"  # one application object, its only row refused
    source.write_text(_json_with(labelled, "Credit amount", "1e20")[BIG_ROW - 1])
    result = invoke("agreement", source)
    lines = assert_one_line_each(result)
    assert lines == [
        f"preauth: error: {source}, row 1, column 'Credit amount': "
        "1e+20 is too large (at most 9,007,199,254,740,991); no row left to measure"
    ]


def test_predict_scores_the_good_lines_of_a_json_lines_file_with_a_bad_one(
    tmp_path: Path, labelled: pd.DataFrame, small_models_dir: Path
) -> None:
    lines = [json.dumps(r) for r in _typed(labelled.head(5))]
    lines[1] = lines[1][:-1]
    (source := tmp_path / "apps.jsonl").write_text("\n".join(lines) + "\n")
    result = invoke("--models-dir", small_models_dir, "predict", source, "-o", tmp_path / "out")
    lines_out = assert_one_line_each(result)
    assert (
        lines_out[0]
        == f"preauth: rejected: {source}, row 2: invalid JSON on line 2 (Expecting ',' delimiter)"
    )
    (results,) = (tmp_path / "out").glob("inference_results_*.json")
    assert [r["input_data"]["Age"] for r in json.loads(results.read_text())] == [
        int(a) for a in labelled["Age"].head(5).drop(index=1)
    ]
    (rejects,) = (tmp_path / "out").glob("*.rejects.csv")
    assert pd.read_csv(rejects)["row"].tolist() == [2]


def test_rejects_files_never_carry_a_spreadsheet_formula(tmp_path: Path) -> None:
    import csv

    header = "Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose"
    rows = [
        "30,male,2,=cmd|' /C calc'!A0,little,little,1000,12,car",
        "30,male,2,own,little,little,+SUM(A1:A9),12,car",
        "-3,male,2,own,little,little,1000,12,car",
        "30,male,2,own,@HYPERLINK(x),little,1000,12,car",
        "30,male,2,own,little,little,1000,-1+1,car",
        "30,male,2,own,little,little,1000,12,car",
    ]
    source = tmp_path / "apps.csv"
    source.write_text(header + "\n" + "\n".join(rows) + "\n")
    result = invoke("prepare", source, "-o", tmp_path / "prepared.csv")
    assert_one_line_each(result)
    with (tmp_path / "prepared.rejects.csv").open(newline="") as handle:
        rejects = list(csv.DictReader(handle))
    assert [r["value"] for r in rejects] == [
        "'=cmd|' /C calc'!A0",
        "'+SUM(A1:A9)",
        "-3",  # a plain number stays readable
        "'@HYPERLINK(x)",
        "'-1+1",
    ]
    for reject in rejects:
        for cell in reject.values():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("=1+1", "'=1+1"),
        ("+1+1", "'+1+1"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-3", "-3"),
        ("+2.5e3", "+2.5e3"),
        ("castle", "castle"),
        ("", ""),
    ],
)
def test_spreadsheet_safe(text: str, safe: str) -> None:
    from preauth.files import spreadsheet_safe

    assert spreadsheet_safe(text) == safe


def test_the_results_csv_never_carries_a_spreadsheet_formula(tmp_path: Path, small_models_dir: Path) -> None:
    """An unknown category kept with --on-unknown unknown is the applicant's own text, in the results."""
    import csv

    header = "Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose"
    purposes = ["=cmd|' /C calc'!A0", "+SUM(A1:A9)", "@HYPERLINK(x)", "-1+1", "car", "-3"]
    source = tmp_path / "apps.csv"
    source.write_text(
        header + "\n" + "".join(f'30,male,2,own,little,little,1000,12,"{p}"\n' for p in purposes)
    )
    for flags in ([], ["--explain"]):
        out = tmp_path / f"out{len(flags)}"
        result = invoke(
            "--models-dir", small_models_dir, "predict", source, "--format", "csv", "--on-unknown", "unknown",
            "-o", out, *flags,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        with next(out.glob("*.csv")).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [r["Purpose"] for r in rows] == [
            "'=cmd|' /C calc'!A0", "'+SUM(A1:A9)", "'@HYPERLINK(x)", "'-1+1", "car", "-3",
        ]  # fmt: skip
        for row in rows:
            for cell in row.values():
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell


def test_spreadsheet_safe_column_is_spreadsheet_safe_cell_by_cell() -> None:
    from preauth.files import spreadsheet_safe, spreadsheet_safe_column

    cells = ["=1+1", "-3", "-3\n", "+2.5e3", "-１", "@", "", None, "castle", "\r=1", "'=1", "-", "+.5", "é=1"]
    expected = [None if c is None else spreadsheet_safe(c) for c in cells]
    for kind in (pa.string(), pa.large_string()):
        assert spreadsheet_safe_column(pa.array(cells, kind)).to_pylist() == expected
        chunked = pa.chunked_array([pa.array(cells[:5], kind), pa.array(cells[5:], kind)])
        assert spreadsheet_safe_column(chunked).to_pylist() == expected
    assert spreadsheet_safe_column(pa.array(cells).dictionary_encode()).to_pylist() == expected
    plain = pa.array(["car", None, "3"])
    assert spreadsheet_safe_column(plain) is plain  # nothing risky: the same column, no copy
    numbers = pa.array([1.0, -2.0])
    assert spreadsheet_safe_column(numbers) is numbers


# --------------------------------------------------------------------------------------------
# Files that hold no applications at all: one line naming the file, whatever the command


HEADER = "Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose"


def _parquet_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    pq.write_table(pa.table({"Age": list(range(100))}), buffer)
    return buffer.getvalue()


HOSTILE: dict[str, Callable[[Path], Path]] = {
    "empty file": lambda d: _write(d / "a.csv", b""),
    "blank lines": lambda d: _write(d / "a.csv", b"\n \r\n\n"),
    "header only": lambda d: _write(d / "a.csv", HEADER.encode() + b"\n"),
    "empty header names": lambda d: _write(d / "a.csv", b",,,\n1,2,3,4\n"),
    "0-byte parquet": lambda d: _write(d / "a.parquet", b""),
    "truncated parquet": lambda d: _write(d / "a.parquet", _parquet_bytes()[:300]),
    "binary junk csv": lambda d: _write(d / "a.csv", bytes(range(256)) * 20),
    "binary junk parquet": lambda d: _write(d / "a.parquet", bytes(range(256)) * 20),
    "NUL bytes": lambda d: _write(d / "a.csv", b"\0" * 1000),
    "10,000 columns": lambda d: _write(
        d / "a.csv", (",".join(f"c{i}" for i in range(10_000)) + "\n" + "1," * 9_999 + "1\n").encode()
    ),
    "50 MB single line": lambda d: _write(d / "a.csv", b"a" * 50_000_000),
    "50 MB line after the header": lambda d: _write(d / "a.csv", HEADER.encode() + b"\n" + b"a" * 50_000_000),
    "a directory": lambda d: _mkdir(d / "a.csv"),
    "a FIFO": lambda d: _mkfifo(d / "a.csv"),
    "/dev/null": lambda d: Path("/dev/null"),
    "missing": lambda d: d / "nothing.csv",
    "JSON scalar": lambda d: _write(d / "a.json", b"42"),
    "empty JSON list": lambda d: _write(d / "a.json", b"[]"),
    "broken JSON": lambda d: _write(d / "a.json", b'[{"Age": 1'),
    "deep JSON": lambda d: _write(d / "a.json", b"[" * 100_000 + b"]" * 100_000),
    "deep JSON object": lambda d: _write(d / "a.json", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    "UTF-16": lambda d: _write(d / "a.csv", HEADER.encode("utf-16")),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _mkfifo(path: Path) -> Path:
    import os

    os.mkfifo(path)
    return path


COMMANDS: dict[str, Callable[[Path, Path, Path], list[str | Path]]] = {
    "prepare": lambda src, out, models: ["prepare", src, "-o", out / "p.csv"],
    "predict": lambda src, out, models: ["--models-dir", models, "predict", src, "-o", out],
    "train": lambda src, out, models: ["--models-dir", out, "train", src, "--trials", "1", "--no-progress"],
    "sample": lambda src, out, models: ["sample", src, "-o", out / "s.csv"],
    "describe": lambda src, out, models: ["describe", src, "-o", out / "d.csv"],
    "label": lambda src, out, models: ["label", src, "-o", out / "l.csv"],
    "agreement": lambda src, out, models: ["agreement", src],
}


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each hostile file made once (two are 50 MB) and only read by the commands."""
    root = tmp_path_factory.mktemp("hostile")
    made = {}
    for number, (case, make) in enumerate(HOSTILE.items()):
        (folder := root / str(number)).mkdir()
        made[case] = make(folder)
    return made


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_file_without_applications_is_one_line_naming_it(
    tmp_path: Path, small_models_dir: Path, hostile_files: dict[str, Path], command: str, case: str
) -> None:
    source = hostile_files[case]
    result = invoke(*COMMANDS[command](source, tmp_path / "out", small_models_dir))
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    for line in result.stderr.splitlines():
        assert len(line) < 300 and ".py" not in line and "Traceback" not in line, line
    # describe and label may show their (empty) progress line too; every message is a preauth: line.
    lines = [line for line in result.stderr.splitlines() if line.startswith("preauth: ")]
    assert lines[0].startswith((f"preauth: error: {source}: ", f"preauth: error: {source}, row 1: ")) or (
        lines[0].startswith(f"preauth: rejected: {source}, row 1: ")  # a line too long is a bad row
    ), lines


# --------------------------------------------------------------------------------------------
# Values no terminal line or text can hold


def test_a_value_with_a_newline_is_reported_on_one_line(tmp_path: Path, labelled: pd.DataFrame) -> None:
    records = _typed(labelled.head(3))
    records[1]["Housing"] = "castle\nrm -rf /\r\0x"
    (source := tmp_path / "apps.json").write_text(json.dumps(records))
    result = invoke("prepare", source, "-o", tmp_path / "prepared.csv")
    lines = assert_one_line_each(result)
    assert lines == [
        f"preauth: rejected: {source}, row 2, column 'Housing': "
        "'castle\\nrm -rf /\\r\\x00x' is not one of: own, rent, free",
        f"preauth: 1 rejected rows with reasons in {tmp_path / 'prepared.rejects.csv'}",
    ]


@pytest.mark.parametrize("name", ["apps.json", "apps.jsonl"])
def test_a_lone_surrogate_in_json_is_a_bad_value_of_its_row(
    tmp_path: Path, labelled: pd.DataFrame, name: str
) -> None:
    lines = [json.dumps(r) for r in _typed(labelled.head(3))]
    lines[1] = (
        lines[1]
        .replace('"Housing": "own"', '"Housing": "\\ud800"')
        .replace('"Housing": "free"', '"Housing": "\\ud800"')
        .replace('"Housing": "rent"', '"Housing": "\\ud800"')
    )
    text = "[" + ",".join(lines) + "]" if name == "apps.json" else "\n".join(lines)
    (source := tmp_path / name).write_text(text)
    result = invoke("prepare", source, "-o", tmp_path / "prepared.csv")
    lines_out = assert_one_line_each(result)
    assert lines_out[0] == (
        f"preauth: rejected: {source}, row 2, column 'Housing': '\ufffd' is not one of: own, rent, free"
    )
    assert len(pd.read_csv(tmp_path / "prepared.csv")) == 2
