"""Results files held against golden files: every format's bytes, written whole and in batches.

The whole-file writer (``preauth run``, a Dask part) is predict's batch writer given one batch, so
comparing the two says nothing about either. The files under ``tests/golden/results/`` are the
independent reference: written from a hand-made result set (fixed probabilities, hostile texts,
ids, blanks; no model, so no XGBoost version changes them) by the writers as they were before they
became one, and checked in. A change in any format's bytes shows here, whichever path wrote them.
Parquet is compared as a table with its schema, not as bytes: its footer names the Arrow version.

Rewriting them is a decision, not a test run: ``python tests/test_result_files.py`` writes them anew.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from preauth import results
from preauth.applications import GERMAN, validate
from preauth.formats import FORMATS
from preauth.scoring import Scored

GOLDEN = Path(__file__).parent / "golden" / "results"
STAMP = "2026-12-05T07:00:00.000001"
BATCHES = [(0, 5), (5, 9), (9, 12)]
"""Three batches of the twelve rows; only the last has an amount with cents (Parquet widens)."""

CELLS = {
    "id": ['say "hi"', "back\\slash", "new\nline", "tab\there", "café 漢字 😀", "0007", "-0", "12345678901234567890",
           "</script>", "   ", "nul\x00bell\x07", "\u2028\u2029"],
    "Age": ["30", "44", "19", "75", "22", "35", "53", "28", "61", "40", "33", "25"],
    "Sex": ["male", "female", "", "male", "female", "male", "", "female", "male", "female", "male", "male"],
    "Job": ["2", "1", "0", "3", "2", "2", "1", "0", "3", "2", "1", "2"],
    "Housing": ["own", "rent", "free", "own", "own", "rent", "free", "own", "rent", "own", "own", "free"],
    "Saving accounts": ["little", "", "rich", "moderate", "little", "", "quite rich", "little", "", "rich",
                        "little", "moderate"],
    "Checking account": ["moderate", "NA", "little", "", "rich", "little", "NA", "moderate", "little", "",
                         "rich", "moderate"],
    "Credit amount": ["1000", "2500", "9007199254740991", "250", "7000", "1169", "5951", "2096", "7882", "4870",
                      "1234.5678901234567", "3000"],
    "Duration": ["12", "36", "6", "48", "24", "6", "48", "12", "42", "24", "36", "9"],
    "Purpose": ["car", "radio/TV", "business", "education", "car", "repairs", "vacation/others",
                "furniture/equipment", "domestic appliances", "car", "business", "radio/TV"],
}  # fmt: skip
PROBABILITY = [0.5, 0.0, 1.0, 0.35, 0.349999, 0.1 + 0.2, 1e-9, 0.999999999, 0.7, 0.25, 0.42, 2 / 3]
THRESHOLD = 0.35


def result_set(start: int, stop: int, *, explain: bool = False) -> Scored:
    """Rows ``start`` to ``stop`` of the table above, validated as a batch of a file is, with fixed
    probabilities (and, with ``explain``, hand-made decisions and reasons)."""
    frame = pd.DataFrame({name: cells[start:stop] for name, cells in CELLS.items()})
    applications = validate(frame, on_unknown="unknown", schema=GERMAN, first_row=start + 1)
    assert len(applications) == stop - start, applications.rejects
    probability = np.array(PROBABILITY[start:stop])
    scored = Scored(applications, probability, THRESHOLD, "v-golden", STAMP)
    if explain:
        scored.decisions = ["refer" if i % 4 == 0 else "decline" if p >= THRESHOLD else "approve"
                            for i, p in enumerate(probability, start=start)]  # fmt: skip
        scored.reasons = [
            [{"feature": "Duration", "direction": "up", "text": f'"{i}" months \\ long'}] * (i % 3)
            for i in range(start, stop)
        ]
    return scored


def write_whole(path: Path, fmt: str, *, explain: bool = False) -> Path:
    return results.write_results(result_set(0, 12, explain=explain), path, fmt)  # type: ignore[arg-type]


def write_batched(path: Path, fmt: str, *, explain: bool = False) -> Path:
    """The three batches through predict's writer for the format, as ``score_file`` drives it."""
    with results._opened(path, fmt, False) as handle:
        writer = results._WRITERS[fmt](handle)
        for start, stop in BATCHES:
            writer.write(result_set(start, stop, explain=explain))
        writer.close()
    return path


Writer = Callable[[Path, str], Path]
VARIANTS: dict[str, tuple[Writer, tuple[str, ...], int]] = {
    # name: (how it is written, the formats it is written in, SMALL while it is written)
    "whole": (write_whole, FORMATS, results.SMALL),
    "batched": (write_batched, FORMATS, results.SMALL),
    "compact-whole": (write_whole, ("json",), 0),
    "compact-batched": (write_batched, ("json",), 6),  # the first batch is held, the second decides
    "reasons-whole": (lambda p, f: write_whole(p, f, explain=True), ("json", "jsonl"), results.SMALL),
    "reasons-batched": (lambda p, f: write_batched(p, f, explain=True), ("json", "jsonl"), results.SMALL),
}
CASES = [(name, fmt) for name, (_, formats, _) in VARIANTS.items() for fmt in formats]


def write_variant(name: str, fmt: str, directory: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write, _, small = VARIANTS[name]
    monkeypatch.setattr(results, "SMALL", small)
    return write(directory / f"{name}.{fmt}", fmt)


@pytest.mark.parametrize(("name", "fmt"), CASES, ids=[f"{n}.{f}" for n, f in CASES])
def test_results_files_are_the_golden_files(
    name: str, fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    golden = GOLDEN / f"{name}.{fmt}"
    written = write_variant(name, fmt, tmp_path, monkeypatch)
    if fmt == "parquet":
        expected, got = pq.read_table(golden), pq.read_table(written)
        assert got.schema.equals(expected.schema, check_metadata=True)
        assert got.equals(expected)
        assert [pq.ParquetFile(p).metadata.num_row_groups for p in (golden, written)] == [
            1 if name == "whole" else len(BATCHES)
        ] * 2
    else:
        assert written.read_bytes() == golden.read_bytes()


@pytest.mark.parametrize("name", ["whole", "batched", "reasons-whole", "reasons-batched"])
def test_indented_json_is_the_same_whatever_objects_are_indented_at_once(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results, "INDENTED", 5)  # the twelve objects in three calls, or a batch in two
    assert (
        write_variant(name, "json", tmp_path, monkeypatch).read_bytes()
        == (GOLDEN / f"{name}.json").read_bytes()
    )


def test_an_unknown_format_is_refused_before_any_file_is_opened(tmp_path: Path) -> None:
    from preauth.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="unknown output format 'xml'; choose one of: json"):
        results.write_results(result_set(0, 3), tmp_path / "out.xml", "xml")  # type: ignore[arg-type]
    source = tmp_path / "apps.csv"
    source.write_text("Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose\n")
    with pytest.raises(ConfigurationError, match="unknown output format 'xml'"):
        results.score_file(None, source, tmp_path / "out2.xml", "xml")  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["apps.csv"]


def test_the_golden_files_show_what_they_are_meant_to() -> None:
    """They pin the shapes that matter: the original's indentation, a compact array, widened amounts."""
    assert (GOLDEN / "whole.json").read_bytes().startswith(b'[\n  {\n    "id": "say \\"hi\\"",\n')
    assert b"\n" not in (GOLDEN / "compact-batched.json").read_bytes()
    amount = pq.read_table(GOLDEN / "batched.parquet").schema.field("input_data").type.field("Credit amount")
    assert str(amount.type) == "double"
    assert (GOLDEN / "batched.csv").read_bytes().count(b'"Age"') == 1  # one header, for three batches


if __name__ == "__main__":
    GOLDEN.mkdir(parents=True, exist_ok=True)
    patch = pytest.MonkeyPatch()
    for case in CASES:
        with patch.context() as scoped:
            print(write_variant(*case, GOLDEN, scoped), file=sys.stderr)
