"""Streaming predict: batch by batch, the same results and rejects as reading the file whole."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest
from pyarrow import csv as pacsv

from preauth import results
from preauth.applications import read_applications
from preauth.applications.batches import iter_tables
from preauth.bundles import Bundle, load_bundle
from preauth.errors import InputError
from preauth.formats import FORMATS
from preauth.results import score_file
from preauth.scoring import Scored, result_objects, result_table, score

STAMP = "2026-11-25T12:00:00.000001"
BATCH = 97  # rows per batch: the file below spans 13 batches
HEADER = "Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose"
# Bad rows in different batches: (row number, the line that replaces it).
BAD_ROWS = {
    3: "150,male,2,own,little,moderate,1000,12,car",
    250: "30,male,2,castle,little,moderate,1000,12,car",
    251: "30,male,x,own,little,moderate,1000,12,car",
    777: "30,male,2,own,little,moderate,-5,12,car",
    1200: "30,male,2,own,little,moderate,1000,12,spaceship",
}
MALFORMED = {600: "30,male,2,own"}  # too few fields: CSV only


@pytest.fixture(scope="module")
def bundle(small_models_dir: Path) -> Bundle:
    return load_bundle(small_models_dir)


@pytest.fixture(scope="module")
def rows(bundled_data: Path) -> list[str]:
    """1,210 data lines from the bundled data, with the bad ones in place."""
    lines = bundled_data.read_text().splitlines()[1:]
    body = [line.split(",", 1)[1] for line in lines]  # without the id column
    out = [body[i % len(body)] for i in range(1210)]
    for number, line in BAD_ROWS.items():
        out[number - 1] = line
    return out


def write_csv(path: Path, rows: list[str], malformed: dict[int, str]) -> Path:
    lines = list(rows)
    for number, line in malformed.items():
        lines[number - 1] = line
    path.write_text(HEADER + "\n" + "\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module", params=["csv", "parquet", "jsonl"])
def source(request: pytest.FixtureRequest, rows: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("inputs")
    if request.param == "csv":
        return write_csv(directory / "apps.csv", rows, MALFORMED)
    frame = pd.read_csv(write_csv(directory / "plain.csv", rows, {}), dtype=str, keep_default_na=False)
    if request.param == "parquet":
        path = directory / "apps.parquet"
        frame.to_parquet(path, row_group_size=300)
        return path
    path = directory / "apps.jsonl"
    records = frame.to_dict(orient="records")
    for i, record in enumerate(records):
        if i < 300:  # the balances appear only after the first batches: every batch must still have them
            record.pop("Saving accounts")
        if record.get("Checking account") == "":
            record["Checking account"] = None
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def whole(bundle: Bundle, source: Path, path: Path, fmt: str, explain: bool = False) -> tuple[Path, list]:
    """Today's path: the whole file read, validated and scored at once, and written by the
    libraries in one call (:func:`reference`)."""
    applications = read_applications(source)
    scored = score(bundle, applications, explain=explain)
    scored.timestamp = STAMP
    reference(scored, path, fmt)
    return path, applications.rejects


def reference(scored: Scored, path: Path, fmt: str) -> None:
    """The whole result set written in one call to orjson or Arrow: not predict's batch writers,
    which the whole-file writer (:func:`.results.write_results`) is too, so a reference for them."""
    objects = result_objects(scored)
    if fmt == "json" and (scored.reasons is not None or len(scored) <= results.SMALL):
        path.write_bytes(orjson.dumps(objects, option=orjson.OPT_INDENT_2) + b"\n")
    elif fmt == "json":
        path.write_bytes(orjson.dumps(objects))
    elif fmt == "jsonl":
        path.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in objects))
    elif fmt == "parquet":
        pq.write_table(result_table(scored, nested=True), path)
    else:
        pacsv.write_csv(result_table(scored, nested=False), path)


def same_file(fmt: str, expected: Path, got: Path) -> None:
    """Byte for byte, but for Parquet (compared by rows) and JSON text written compact: orjson
    escapes some characters otherwise than :mod:`.json_lines` does, so it is compared parsed,
    written back canonically (key order and number types, ``3`` against ``3.0``, count)."""
    if fmt == "parquet":
        assert pq.read_table(expected).to_pylist() == pq.read_table(got).to_pylist()
    elif fmt == "jsonl":
        assert canonical(fmt, got) == canonical(fmt, expected)
    elif expected.read_bytes()[:2] == b"[{":  # a compact array: one line
        assert canonical(fmt, got) == canonical(fmt, expected) and b"\n" not in got.read_bytes()
    else:
        assert expected.read_bytes() == got.read_bytes()


def canonical(fmt: str, path: Path) -> list[str]:
    text = path.read_text()
    items = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
    return [json.dumps(item) for item in items]


@pytest.mark.parametrize("fmt", FORMATS)
def test_batches_give_the_whole_file_results_and_rejects(
    bundle: Bundle, source: Path, tmp_path: Path, fmt: str
) -> None:
    expected, expected_rejects = whole(bundle, source, tmp_path / f"whole.{fmt}", fmt)
    streamed = score_file(
        bundle,
        source,
        tmp_path / f"streamed.{fmt}",
        fmt,
        batch_rows=BATCH,
        timestamp=STAMP,  # type: ignore[arg-type]
    )
    assert streamed.batches == 13
    assert streamed.rejects == expected_rejects
    assert {r.row for r in streamed.rejects} == set(BAD_ROWS) | (
        set(MALFORMED) if source.suffix == ".csv" else set()
    )
    assert streamed.scored == 1210 - len(streamed.rejects)
    same_file(fmt, expected, streamed.path)


def test_the_compact_json_array_streams_too(
    bundle: Bundle, source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results, "SMALL", 150)  # past this many results, JSON is compact: one line
    expected, _ = whole(bundle, source, tmp_path / "whole.json", "json")
    streamed = score_file(
        bundle, source, tmp_path / "streamed.json", "json", batch_rows=BATCH, timestamp=STAMP
    )
    assert streamed.path.read_bytes()[:2] == b"[{"
    same_file("json", expected, streamed.path)
    assert len(json.loads(streamed.path.read_text())) == streamed.scored


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_reasons_stream_too(bundle: Bundle, tmp_path: Path, rows: list[str], fmt: str) -> None:
    source = write_csv(tmp_path / "apps.csv", rows[:300], {})
    expected, _ = whole(bundle, source, tmp_path / f"whole.{fmt}", fmt, explain=True)
    streamed = score_file(
        bundle,
        source,
        tmp_path / f"s.{fmt}",
        fmt,
        explain=True,
        batch_rows=BATCH,
        timestamp=STAMP,  # type: ignore[arg-type]
    )
    same_file(fmt, expected, streamed.path)


def array_of(tmp_path: Path, rows: list[str], **dumps: Any) -> Path:
    frame = pd.read_csv(write_csv(tmp_path / "p.csv", rows, {}), dtype=str, keep_default_na=False)
    records: list[Any] = frame.to_dict(orient="records")
    records[99] = 5  # not an application: a rejected row of its own
    source = tmp_path / "apps.json"
    source.write_text(json.dumps(records, **dumps))
    return source


@pytest.mark.parametrize("indent", [2, None])
def test_a_json_array_streams(
    bundle: Bundle, tmp_path: Path, rows: list[str], monkeypatch: pytest.MonkeyPatch, indent: int | None
) -> None:
    """Pretty-printed or one line, in reads that cut elements anywhere: the whole file's results."""
    from preauth.applications import json_array

    monkeypatch.setattr(json_array, "READ_SIZE", 4099)
    source = array_of(tmp_path, rows[:400], indent=indent)
    expected, expected_rejects = whole(bundle, source, tmp_path / "whole.jsonl", "jsonl")
    streamed = score_file(bundle, source, tmp_path / "s.jsonl", "jsonl", batch_rows=BATCH, timestamp=STAMP)
    assert streamed.batches == 5
    assert streamed.rejects == expected_rejects and [r.row for r in streamed.rejects] == [3, 100, 250, 251]
    same_file("jsonl", expected, streamed.path)


def test_a_json_array_broken_late_is_one_line_and_leaves_no_results_file(
    small_models_dir: Path, tmp_path: Path, rows: list[str]
) -> None:
    """The first pass refuses it, as reading it whole does, before a batch is written."""
    source = array_of(tmp_path, rows, indent=2)
    text = source.read_text()
    source.write_text(text[: text.rindex("}")])  # the last element cut short: the array never closes
    out = tmp_path / "results"
    result = subprocess.run(
        [sys.executable, "-m", "preauth", "--models-dir", str(small_models_dir), "predict", str(source),
         "-o", str(out), "--format", "jsonl", "--batch-rows", str(BATCH)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    cut = text[: text.rindex("}")].rstrip()  # where json meets the end: after the last value
    line, column = cut.count("\n") + 1, len(cut) - cut.rfind("\n")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"preauth: error: {source}: invalid JSON (Expecting ',' delimiter, line {line}, column {column})"
    )
    assert not list(out.glob("*"))


def test_an_error_in_a_late_batch_leaves_no_results_file(
    bundle: Bundle, tmp_path: Path, rows: list[str]
) -> None:
    source = write_csv(tmp_path / "apps.csv", rows, {})
    source.write_bytes(source.read_bytes().replace(b"spaceship", b"space\xffship"))  # row 1200, batch 13
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"not UTF-8 text \(byte 0xff on line 1201\)"):
        score_file(bundle, source, out / "r.jsonl", "jsonl", batch_rows=BATCH)
    assert list(out.iterdir()) == []


def test_rejects_are_written_as_they_come_and_only_the_first_kept(
    bundle: Bundle, tmp_path: Path, rows: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a rejects file, predict keeps only the first rejects in memory (a file of bad rows held
    them all: 1.2 GB for a million); the file holds every one, byte for byte as written at once,
    appears only when complete and only when something was rejected."""
    from preauth import rejects as rejects_module

    monkeypatch.setattr(rejects_module, "KEPT", 2)
    source = write_csv(tmp_path / "apps.csv", rows, MALFORMED)
    kept = score_file(bundle, source, tmp_path / "all" / "r.jsonl", "jsonl", batch_rows=BATCH)
    assert kept.rejected == len(kept.rejects) == 6 and kept.rejects_path is None
    streamed = score_file(
        bundle,
        source,
        tmp_path / "s" / "r.jsonl",
        "jsonl",
        batch_rows=BATCH,
        rejects_path=tmp_path / "s" / "r.rejects.csv",
    )
    assert streamed.rejected == 6 and streamed.rejects == kept.rejects[:2]
    assert streamed.rejects_path == tmp_path / "s" / "r.rejects.csv"
    # the file the rejects writer wrote before it streamed: pandas' CSV of the same cells
    from preauth.files import spreadsheet_safe

    cells = {
        "column": [r.column or "" for r in kept.rejects],
        "value": [r.value or "" for r in kept.rejects],
        "reason": [r.reason for r in kept.rejects],
        "message": [r.message(str(source)) for r in kept.rejects],
    }
    frame = pd.DataFrame(
        {
            "row": [r.row for r in kept.rejects],
            **{k: [spreadsheet_safe(t) for t in v] for k, v in cells.items()},
        }
    )
    assert streamed.rejects_path.read_bytes() == frame.to_csv(index=False).encode()
    clean = write_csv(tmp_path / "clean.csv", [r for i, r in enumerate(rows, 1) if i not in BAD_ROWS], {})
    none = score_file(
        bundle, clean, tmp_path / "c" / "r.jsonl", "jsonl", rejects_path=tmp_path / "c" / "x.csv"
    )
    assert none.rejected == 0 and sorted(p.name for p in (tmp_path / "c").iterdir()) == ["r.jsonl"]
    source.write_bytes(source.read_bytes().replace(b"spaceship", b"space\xffship"))  # fails in batch 13
    with pytest.raises(InputError):
        score_file(
            bundle,
            source,
            tmp_path / "f" / "r.jsonl",
            "jsonl",
            batch_rows=BATCH,
            rejects_path=tmp_path / "f" / "x.csv",
        )
    assert list((tmp_path / "f").iterdir()) == []  # neither file, though rows were rejected before


def test_a_bad_json_line_is_a_rejected_row_and_the_others_are_scored(bundle: Bundle, tmp_path: Path) -> None:
    """As in a CSV (and the whole-file reader): the bad line is a reject, numbered across batches."""
    source = tmp_path / "apps.jsonl"
    good = json.dumps(
        {
            "Age": 30,
            "Sex": "male",
            "Job": 2,
            "Housing": "own",
            "Credit amount": 1000,
            "Duration": 12,
            "Purpose": "car",
        }
    )
    source.write_text("\n".join([good] * 250 + ["{oops"] + [good] * 10 + ["[1, 2]"]) + "\n")
    done = score_file(bundle, source, tmp_path / "out" / "r.json", "json", batch_rows=BATCH)
    assert done.scored == 260
    assert [(r.row, r.reason.split(" (")[0]) for r in done.rejects] == [
        (251, "invalid JSON on line 251"),
        (262, "expected an application object on line 262"),
    ]
    assert len(json.loads((tmp_path / "out" / "r.json").read_text())) == 260
    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_text("{oops\n{also bad\n")
    with pytest.raises(InputError, match="bad.jsonl: invalid JSON"):
        score_file(bundle, only_bad, tmp_path / "out2" / "r.json", "json", batch_rows=BATCH)


def test_header_only_and_empty_batches(tmp_path: Path) -> None:
    source = tmp_path / "apps.csv"
    source.write_text(HEADER + "\n\n\n")
    assert list(iter_tables(source, batch_rows=1)) == []
    bundle_free = pytest.raises(InputError, match="no applications \\(header only\\)")
    from preauth.applications.batches import iter_applications

    with bundle_free:
        list(iter_applications(source))


@pytest.mark.parametrize("lines", [1, 3, 40, 999, 1000, 1001, 2500, 5000])
@pytest.mark.parametrize("read_size", [7, 1 << 10, 1 << 14, 1 << 20])
def test_line_blocks_cut_after_every_nth_line_whatever_the_reads(lines: int, read_size: int) -> None:
    """Blocks of ``lines`` whole lines, whether a read holds many block ends, one, or none."""
    import io

    from preauth.applications.batches import _line_blocks

    text = b"".join(f"{i},{'x' * (i % 37)}\n".encode() for i in range(4321)) + b"last, no newline"
    blocks = list(_line_blocks(io.BytesIO(text), lines, read_size))
    assert b"".join(blocks) == text
    every = text.splitlines(keepends=True)
    assert blocks == [b"".join(every[i : i + lines]) for i in range(0, len(every), lines)]


def test_predict_streams_with_a_small_batch_size(
    small_models_dir: Path, tmp_path: Path, rows: list[str]
) -> None:
    source = write_csv(tmp_path / "apps.csv", rows, MALFORMED)
    out = tmp_path / "results"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "preauth",
            "--models-dir",
            str(small_models_dir),
            "predict",
            str(source),
            "-o",
            str(out),
            "--format",
            "csv",
            "--batch-rows",
            str(BATCH),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert f"{source}, row 1200, column 'Purpose': 'spaceship' is not one of" in result.stderr
    assert f"{source}, row 600: has 4 fields, the header has 9" in result.stderr
    [results] = [p for p in out.glob("inference_results_*.csv") if ".rejects" not in p.name]
    assert len(pd.read_csv(results)) == 1210 - 6
    [rejects] = out.glob("*.rejects.csv")
    assert pd.read_csv(rejects)["row"].tolist() == [3, 250, 251, 600, 777, 1200]
    assert not list(out.glob(".*"))  # no temporary file left behind


@pytest.mark.parametrize("fmt", FORMATS)
def test_amounts_with_cents_in_a_late_batch(
    bundle: Bundle, tmp_path: Path, rows: list[str], fmt: str
) -> None:
    """The first batches' whole amounts are integers; a later batch's cents widen Parquet's column."""
    lines = [line for i, line in enumerate(rows[:400], start=1) if i not in BAD_ROWS]
    lines[350] = "30,male,2,own,little,moderate,1000.5,12,car"
    source = write_csv(tmp_path / "apps.csv", lines, {})
    expected, _ = whole(bundle, source, tmp_path / f"whole.{fmt}", fmt)
    streamed = score_file(bundle, source, tmp_path / f"s.{fmt}", fmt, batch_rows=BATCH, timestamp=STAMP)  # type: ignore[arg-type]
    if fmt == "parquet":
        got = pq.read_table(streamed.path)
        assert str(got.schema.field("input_data").type.field("Credit amount").type) == "double"
        assert got.to_pylist() == pq.read_table(expected).to_pylist()
    elif fmt == "csv":
        assert streamed.path.read_bytes() == expected.read_bytes()
    else:  # each batch keeps its own whole numbers as integers: the same values, not the same text
        read = (
            (lambda p: json.loads(p.read_text()))
            if fmt == "json"
            else (lambda p: [json.loads(line) for line in p.read_text().splitlines()])
        )
        assert read(streamed.path) == read(expected)
        assert read(streamed.path)[350]["input_data"]["Credit amount"] == 1000.5
