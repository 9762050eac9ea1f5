"""A JSON array streamed a piece at a time (:mod:`preauth.applications.json_array`) gives what
reading it whole gives: the same cells, bad rows, row numbers and rejects, or the same one-line
error, on random arrays cut everywhere (tiny batches, tiny reads) and on broken ones.

The reference is the whole-file reader itself (:func:`.reading.read_table`, ``json.loads`` of the
text), so any difference in a cell, a row number or an error's line and column fails here.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from preauth.applications import GERMAN, MALFORMED_ROWS, json_array, read_applications
from preauth.applications import batches as batches_module
from preauth.applications.batches import iter_applications, iter_tables
from preauth.applications.reading import read_table
from preauth.errors import InputError

FIELDS = list(GERMAN.field_names)
GOOD = dict(zip(FIELDS, [30, "male", 2, "own", "little", "moderate", 1000, 12, "car"], strict=True))
TRICKY = [
    "]", "}", "{", "[", ",", '"', "\\", '\\"', "\\\\", 'a"]},{"', "café", "漢字 😀", "\u2028", "tab\there",
    "two\nlines", "cr\r\nlf", "\x00", "\\u0041", "", " ", "car", "radio/TV",
]  # fmt: skip
SPACES = ["", " ", "\n", "\r\n", "\t", "\n  ", "  \n\t "]


def value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.random()
    if kind < 0.3:
        return rng.choice(TRICKY)
    if kind < 0.55:
        return rng.choice([0, 19, 35, -1, 1000, 2.5, 35.0, -0.0, 1e16, 12345678901234567, True, None])
    if kind < 0.7 and depth < 3:  # nested objects and lists as values, holding the tricky strings
        if rng.random() < 0.5:
            return {rng.choice(TRICKY): value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return rng.choice(["female", "own", "rent", "little", "car", 24, 2])


def application(rng: random.Random) -> dict[str, Any]:
    record = dict(GOOD)
    for name in rng.sample(FIELDS, rng.randint(0, 3)):  # some values replaced, some fields missing
        if rng.random() < 0.5:
            del record[name]
        else:
            record[name] = value(rng)
    if rng.random() < 0.2:
        record[rng.choice(["late key", "Note", "é"])] = value(rng)
    return record


def element(rng: random.Random) -> Any:
    kind = rng.random()
    if kind < 0.6:
        return application(rng)
    if kind < 0.85:  # a results file's element
        wrapped = {"input_data": application(rng), "probability_fraud": rng.random(), "is_fraud": False}
        if rng.random() < 0.3:
            wrapped["explanation"] = {"reasons": [value(rng) for _ in range(3)], "deep": [[[["]"]]]]}
        return wrapped
    return rng.choice([5, None, "x]", [1, {"a": "]"}], True, {}, {"input_data": 5}, {"input_data": None}])


def array_text(rng: random.Random) -> str:
    """A JSON array of random elements, printed in random ways."""
    elements = [element(rng) for _ in range(rng.choice([0, 1, 2, 5, 12, 30]))]
    indent = rng.choice([None, None, 1, 2, "\t"])
    ascii_only = rng.random() < 0.5
    if rng.random() < 0.3:
        return json.dumps(elements, indent=indent, ensure_ascii=ascii_only)
    texts = [json.dumps(e, indent=indent, ensure_ascii=ascii_only) for e in elements]
    if texts and rng.random() < 0.2:  # escapes json.dumps never writes: a lone surrogate, a pair, "\/"
        texts[rng.randrange(len(texts))] = '{"Sex": "\\ud800\\ud83d\\ude00\\/", "Age": 30}'
    body = "".join(rng.choice(SPACES) + "," + rng.choice(SPACES) + t for t in texts[1:])
    body = texts[0] + body if texts else rng.choice(SPACES)
    return rng.choice(["", " ", "\n"]) + "[" + rng.choice(SPACES) + body + rng.choice(SPACES) + "]"


def broken(rng: random.Random, text: str) -> bytes:
    """The text with one thing wrong (or none), as a file's bytes."""
    data = text.encode("utf-8", "surrogatepass")
    cut = rng.randint(1, max(len(data) - 1, 1))
    corruptions = [
        lambda: data[:cut],  # truncated anywhere, in a string, an escape or a character too
        lambda: data + rng.choice([b" x", b"\n]", b" [1]", b"\n\xc2\xa0", b"\xe3\x80\x80x", b" \n \t"]),
        lambda: data.replace(b",", b"", 1),
        lambda: data.replace(b",", b",,", 1),
        lambda: data[:-1].rstrip() + b", ]" if data.rstrip().endswith(b"]") else data,
        lambda: data.replace(b"}", b"]", 1),
        lambda: data.replace(b'"', b"", 1),
        lambda: data.replace(b"\\n", b"\n", 1),  # a raw line end in a string
        lambda: data.replace(b"\\", b"", 1),
        lambda: data[:cut] + b"\xff" + data[cut:],
        lambda: data.replace(b"[", b"[" + b"[" * 3000 + b"]" * 3000 + b",", 1),
        lambda: data.replace(b"]", b"}", 1) if data.count(b"]") == 1 else data,
    ]
    fixed = data if rng.random() < 0.5 else rng.choice(corruptions)()
    return (b"\xef\xbb\xbf" if rng.random() < 0.15 else b"") + fixed


def whole_outcome(path: Path) -> Any:
    """What reading the file whole gives: its cells and bad rows, or its error."""
    try:
        table = read_table(path)
    except InputError as error:
        return str(error)
    if len(table) == 0:
        return "no rows"
    return cells(table, 1)


def streamed_outcome(path: Path, batch_rows: int) -> Any:
    """The batches' cells and bad rows put end to end, numbered by each batch's first row."""
    try:
        batches = list(iter_tables(path, batch_rows=batch_rows))
    except InputError as error:
        return str(error)
    if not batches:
        return "no rows"
    assert all(0 < len(b.table) <= batch_rows for b in batches)
    assert [b.first_row for b in batches] == [
        1 + sum(len(b.table) for b in batches[:i]) for i in range(len(batches))
    ]
    parts = [cells(b.table, b.first_row) for b in batches]
    assert all(p[0] == parts[0][0] for p in parts)  # every batch has every column, in one order
    return parts[0][0], [row for p in parts for row in p[1]], {k: v for p in parts for k, v in p[2].items()}


def cells(table: pd.DataFrame, first_row: int) -> Any:
    malformed = {first_row - 1 + row: bad for row, bad in table.attrs.get(MALFORMED_ROWS, {}).items()}
    return [str(c) for c in table.columns], table.astype(object).values.tolist(), malformed


def rejects_outcome(read: Any) -> Any:
    try:
        return read()
    except InputError as error:
        return str(error)


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of pieces read by Arrow and by ``json``: the test fails if either path did not run."""
    counts = {"arrow": 0, "json": 0}
    plain, values = batches_module._plain_objects, batches_module.element_values

    def counted_plain(block: bytes) -> Any:
        parsed = plain(block)
        counts["arrow"] += parsed is not None
        return parsed

    def counted_values(*args: Any) -> Any:
        counts["json"] += 1
        return values(*args)

    monkeypatch.setattr(batches_module, "_plain_objects", counted_plain)
    monkeypatch.setattr(batches_module, "element_values", counted_values)
    return counts


def cases(tmp_path: Path) -> Iterator[tuple[Path, random.Random]]:
    for seed in range(60):
        rng = random.Random(seed)
        path = tmp_path / f"case_{seed}.json"
        path.write_bytes(broken(rng, array_text(rng)))
        yield path, rng


def test_streamed_arrays_are_the_whole_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, paths: dict[str, int]
) -> None:
    outcomes: set[str] = set()
    for path, rng in cases(tmp_path):
        expected = whole_outcome(path)
        outcomes.add(expected.split(": ", 1)[1][:14] if isinstance(expected, str) else "cells")
        for batch_rows, read_size in [(1, 3), (2, 7), (rng.choice([3, 5, 100]), rng.choice([16, 64, 4096]))]:
            monkeypatch.setattr(json_array, "READ_SIZE", read_size)
            assert streamed_outcome(path, batch_rows) == expected, (
                path.read_bytes()[:300],
                batch_rows,
                read_size,
            )
        streamed(path, batch_rows=2, read_size=64)  # the same rejects, or the same error
    assert paths["arrow"] > 50 and paths["json"] > 50
    # the cases reached every kind of outcome the whole-file reader has for an array
    assert outcomes >= {"cells", "no application", "invalid JSON (", "not UTF-8 text", "JSON nested to"}, (
        outcomes
    )


def write(tmp_path: Path, data: str | bytes, name: str = "apps.json") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def streamed(path: Path, batch_rows: int = 2, read_size: int = 5) -> list[str] | str:
    """The rejects of the file streamed with tiny reads, or its error (checked against the whole read)."""
    original = json_array.READ_SIZE
    json_array.READ_SIZE = read_size
    try:
        got = rejects_outcome(
            lambda: [m for a in iter_applications(path, batch_rows=batch_rows) for m in a.reject_messages()]
        )
    finally:
        json_array.READ_SIZE = original
    assert got == rejects_outcome(lambda: read_applications(path).reject_messages())
    return got


def objects(*elements: Any, indent: int | None = 2) -> str:
    return json.dumps(list(elements), indent=indent)


def test_an_element_not_an_application_is_one_rejected_row(tmp_path: Path) -> None:
    path = write(tmp_path, objects(GOOD, 5, {"input_data": GOOD}, [1, "]"], GOOD))
    assert streamed(path) == [
        f"{path}, row 2: expected an application object",
        f"{path}, row 4: expected an application object",
    ]
    assert [len(b.table) for b in iter_tables(path, batch_rows=2)] == [2, 2, 1]


def test_an_object_missing_fields_is_rejected_for_them(tmp_path: Path) -> None:
    lacking = {k: v for k, v in GOOD.items() if k != "Housing"}
    path = write(tmp_path, objects(GOOD, lacking, GOOD))
    assert streamed(path) == [f"{path}, row 2, column 'Housing': missing value"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[5, null]", "row 1: expected an application object"),
        ("[]", "no applications (empty list)"),
        (" \n[ \n ]\n", "no applications (empty list)"),
        ("[{}, {}]", "no applications (header only)"),
    ],
)
def test_an_array_without_an_application_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    assert streamed(path) == f"{path}{', ' if message.startswith('row') else ': '}{message}"


def test_a_late_syntax_error_is_named_by_line_and_column_as_the_whole_read_names_it(tmp_path: Path) -> None:
    good = objects(*[GOOD] * 40)
    path = write(tmp_path, good[:-2] + ',\n  {"Age": 30 "Sex": "male"}\n]')
    line = good.count("\n") + 1
    assert streamed(path) == f"{path}: invalid JSON (Expecting ',' delimiter, line {line}, column 14)"
    # one line of a compact array: the column counts characters, not bytes
    compact = json.dumps([{**GOOD, "Purpose": "café"}] * 3, ensure_ascii=False)
    path = write(tmp_path, compact[:-1] + ', {"Age": 1,}]')
    column = len(compact[:-1] + ', {"Age": 1,') + 1
    assert streamed(path) == (
        f"{path}: invalid JSON (Expecting property name enclosed in double quotes, line 1, column {column})"
    )


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        ("", "Expecting ',' delimiter, line 1, column {end}"),  # truncated after an element
        (",", "Expecting value, line 1, column {end}"),
        (', {"Age": "3', "Unterminated string starting at, line 1, column {quote}"),
        ("] x", "Extra data, line 1, column {x}"),
        ("]]", "Extra data, line 1, column {x}"),
        (", ]", "Expecting value, line 1, column {x}"),
        ("}", "Expecting ',' delimiter, line 1, column {x}"),
    ],
)
def test_an_array_broken_at_its_end_is_one_line(tmp_path: Path, tail: str, reason: str) -> None:
    body = json.dumps([GOOD] * 3)[:-1]
    text = body + tail
    where = {"end": len(text) + 1, "quote": len(body) + len(', {"Age": ') + 1, "x": len(text)}
    path = write(tmp_path, text + "  \n")
    assert streamed(path) == f"{path}: invalid JSON ({reason.format(**where)})"


def test_trailing_whitespace_of_any_kind_and_a_bom_are_not_data(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbf \n" + objects(GOOD, GOOD).encode() + "\n\u3000\u00a0\n".encode())
    assert streamed(path) == []
    assert sum(len(b.table) for b in iter_tables(path, batch_rows=1)) == 2


@pytest.mark.parametrize("depth", [40, 3000])
def test_a_deep_value_is_read_or_refused_as_reading_whole(tmp_path: Path, depth: int) -> None:
    """Past Arrow's depth (:data:`.cells._NESTING`) an element goes to ``json``; past ``json``'s the
    file is refused in one line, as it is read whole."""
    deep = {"input_data": GOOD, "explanation": json.loads("[" * 40 + "]" * 40)}
    text = objects(GOOD, deep, GOOD)
    if depth > 40:
        text = text.replace('"explanation": [', '"explanation": ' + "[" * depth + "]" * depth + ", [", 1)
        text = text.replace('"explanation"', '"x": 1, "explanation"', 1)
        path = write(tmp_path, text)
        expected: Any = f"{path}: JSON nested too deeply; an application is one object of plain values"
    else:
        path = write(tmp_path, text)
        expected = []
    assert streamed(path) == expected


def test_text_not_utf8_is_named_as_reading_whole_names_it(tmp_path: Path) -> None:
    data = objects(*[GOOD] * 30).encode()
    at = data.rindex(b'"car"')  # in the last element
    latin1 = data[:at] + b'"caf\xe9"' + data[at + 5 :]
    path = write(tmp_path, latin1)
    line = data[:at].count(b"\n") + 1
    assert streamed(path) == f"{path}: not UTF-8 text (byte 0xe9 on line {line}); save the file as UTF-8"
    # an earlier syntax error does not hide it: the whole-file reader decodes before it parses
    path = write(tmp_path, b"[1 2," + latin1[1:])
    assert streamed(path) == f"{path}: not UTF-8 text (byte 0xe9 on line {line}); save the file as UTF-8"


def test_a_piece_holds_one_reads_whole_elements(tmp_path: Path) -> None:
    """Memory stays bounded: a piece is at most a read and the element it finishes."""
    element_size = len(json.dumps(GOOD)) + 2
    path = write(tmp_path, objects(*[GOOD] * 2000, indent=None))
    start = json_array.array_start(path)
    assert start == 0
    pieces = list(json_array.array_pieces(path, start, read_size=4096))
    assert max(len(p.data) for p in pieces) <= 4096 + element_size
    assert sum(len(p.ends) for p in pieces) == 2000 and pieces[-1].end == "closer"


def test_escapes_cut_by_every_read_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A quote after an odd run of backslashes is in its string, after an even run it ends it,
    wherever a read ends inside the run (the run goes on from the read before)."""
    purposes = ["\\", '"', '\\"', "\\\\", '\\\\"', "\\" * 7 + '"', '"],{"', "}", "\\],"]
    text = json.dumps([{**GOOD, "Purpose": p} for p in purposes] + [5, GOOD])
    path = write(tmp_path, text)
    expected = whole_outcome(path)
    assert isinstance(expected, tuple) and [row[-1] for row in expected[1][: len(purposes)]] == purposes
    for read_size in range(1, 12):
        monkeypatch.setattr(json_array, "READ_SIZE", read_size)
        assert streamed_outcome(path, 3) == expected, read_size


def test_a_file_read_whole_gives_each_batch_its_own_bad_rows(tmp_path: Path) -> None:
    """A pretty-printed object's lines read as JSON Lines (the one JSON still read whole): a bad
    row past the first batch was the whole file's row number in every batch (an IndexError)."""
    lines = ["{", '"Age": 30}', json.dumps(GOOD), json.dumps(GOOD), "5", json.dumps(GOOD)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    assert json_array.array_start(path) is None
    assert streamed(path, batch_rows=2) == [
        f"{path}, row 1: invalid JSON on line 1 (Expecting property name enclosed in double quotes)",
        f"{path}, row 2: invalid JSON on line 2 (Extra data)",
        f"{path}, row 5: expected an application object on line 5",
    ]
