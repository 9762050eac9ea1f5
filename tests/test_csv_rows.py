"""A CSV value may hold a newline (quoted): the blocks predict reads, and the pieces a Dask cluster
reads, end only at row ends, so every batch size reads the rows the whole file holds.

Before, a block could end at a newline inside a quoted value: the row's start was read as a whole
row (``"car`` and the newline: scored as car) and its end as another, and every row after it in
the file was numbered one too far.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import pandas as pd
import pytest

from preauth.applications import batches
from preauth.applications.batches import _line_blocks, iter_applications, iter_tables
from preauth.applications.reading import parse_csv
from preauth.cluster import plan, read_piece

HEADER = "Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose"
PURPOSES = [
    "car",
    '"car\nx"',
    '"radio/TV"',
    '"a ""quoted"" word"',
    '"two\n\nlines, and a comma"',
    '"\n"',
    "business",
]


def hostile_csv(rng: random.Random, rows: int) -> bytes:
    """Rows whose Purpose is often quoted, with newlines (also at the start or end of the value),
    doubled quotes and delimiters inside; CRLF or LF line ends; now and then a blank line."""
    lines = [HEADER]
    for i in range(rows):
        lines.append(f"{20 + i % 60},male,2,own,little,moderate,{1000 + i},12,{rng.choice(PURPOSES)}")
        if rng.random() < 0.05:
            lines.append("")
    end = "\r\n" if rng.random() < 0.3 else "\n"
    return (end.join(lines) + end).encode()


def read_in_batches(path: Path, batch_rows: int) -> tuple[list[list[str]], list[int]]:
    """The cells of every batch end to end, and each batch's first row less the rows before it."""
    tables = list(iter_tables(path, batch_rows=batch_rows))
    cells = pd.concat([b.table for b in tables], ignore_index=True).astype(str).values.tolist()
    before = [0]
    for b in tables:
        before.append(before[-1] + len(b.table))
    return cells, [b.first_row - n for b, n in zip(tables, before, strict=False)]


@pytest.mark.parametrize("seed", range(6))
def test_every_batch_size_reads_the_rows_of_the_whole_file(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "apps.csv"
    path.write_bytes(hostile_csv(random.Random(seed), rows=60))
    whole, _ = read_in_batches(path, 10**6)
    assert len(whole) == 60 and any("\n" in row[-1] for row in whole)
    for batch_rows in (1, 2, 3, 7, 59):
        cells, firsts = read_in_batches(path, batch_rows)
        assert cells == whole, batch_rows
        assert set(firsts) == {1}, batch_rows  # each batch numbered from the rows before it
    rejects = [m for a in iter_applications(path, batch_rows=2) for m in a.reject_messages()]
    assert rejects == [m for a in iter_applications(path, batch_rows=10**6) for m in a.reject_messages()]


@pytest.mark.parametrize("read_size", [1, 5, 64, 4096])
def test_blocks_end_at_row_ends_across_reads_of_any_size(read_size: int) -> None:
    """A quoted value split across reads (the quote in one, its newline in the next) still holds."""
    data = hostile_csv(random.Random(11), rows=40).split(b"\n", 1)[1]
    blocks = list(_line_blocks(io.BytesIO(data), 3, read_size, quoted=True))
    assert b"".join(blocks) == data
    header = HEADER.split(",")
    rows = [parse_csv(io.BytesIO(b), header, ",", path=Path("x"), skip_rows=0) for b in blocks if b.strip()]
    whole = parse_csv(io.BytesIO(data), header, ",", path=Path("x"), skip_rows=0)
    pd.testing.assert_frame_equal(pd.concat(rows, ignore_index=True), whole)


def test_a_quote_that_never_closes_still_bounds_the_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stray quote in an unquoted value (``5"``) is read as it is; once more line ends than
    OPEN_QUOTE_LINES pass without a row end, every line end counts again, so no block holds the
    rest of the file, and the rows read are the whole file's."""
    monkeypatch.setattr(batches, "OPEN_QUOTE_LINES", 15)
    rows = [f"{20 + i % 60},male,2,own,little,moderate,{1000 + i},12,car" for i in range(100)]
    rows[3] = rows[3].replace("car", 'car 5" wide')
    data = ("\n".join(rows) + "\n").encode()
    blocks = list(_line_blocks(io.BytesIO(data), 10, 64, quoted=True))
    assert b"".join(blocks) == data
    assert max(b.count(b"\n") for b in blocks) <= 10 + 15 + 1 and len(blocks) >= 5
    header = HEADER.split(",")
    parsed = [parse_csv(io.BytesIO(b), header, ",", path=Path("x"), skip_rows=0) for b in blocks]
    assert pd.concat(parsed, ignore_index=True)["Purpose"].tolist() == [r.rsplit(",", 1)[1] for r in rows]


def test_a_clusters_pieces_start_and_end_at_row_ends(tmp_path: Path) -> None:
    path = tmp_path / "apps.csv"
    path.write_bytes(hostile_csv(random.Random(3), rows=50))
    whole, _ = read_in_batches(path, 10**6)
    pieces = plan([path], batch_rows=4)
    assert len(pieces) > 5
    cells = pd.concat([read_piece(p) for p in pieces], ignore_index=True).astype(str).values.tolist()
    assert cells == whole
