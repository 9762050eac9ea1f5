"""JSON Lines results built a column at a time (:mod:`preauth.json_lines`) parse to what a generic
writer gives: Polars' ``write_ndjson`` (the writer before), and ``orjson`` on each result object.

Parsed objects are compared through ``json.dumps``: key order and number types (``3`` is not
``3.0``) count, which ``==`` on dicts would not see.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from preauth import json_lines as json_lines_module
from preauth import results
from preauth.applications import validate
from preauth.bundles import Bundle, load_bundle
from preauth.json_lines import json_lines
from preauth.results import write_results
from preauth.scoring import Scored, result_objects, result_table, score, write_json_lines

HOSTILE = [
    'say "hi"',
    "back\\slash\\",
    "\\u0041 is not A",
    "tab\there, nul\x00, bell\x07, unit\x1f, del\x7f",
    "new\nline\r\n",
    "café, ünïcødé, 漢字, 😀, \u2028\u2029",
    "</script><script>alert(1)</script>",
    "   ",
]


@pytest.fixture(scope="module")
def bundle(small_models_dir: Path) -> Bundle:
    return load_bundle(small_models_dir)


def hostile_applications(rows: int = 60) -> pd.DataFrame:
    """Text cells as a file gives them: hostile ids and unknown categories, blanks, cents, big numbers."""
    cells: dict[str, list[str]] = {name: [] for name in ("id", "Age", "Sex", "Job", "Housing", "Saving accounts",
                                                         "Checking account", "Credit amount", "Duration", "Purpose")}  # fmt: skip
    amounts = ["1234.5678901234567", "3.0", "9007199254740991", "0.1", "250", "1e3", "7.000000000000001"]
    for i in range(rows):
        cells["id"].append(
            [*HOSTILE, "12345678901234567890", "-0", "007", ""][i % (len(HOSTILE) + 4)] + str(i)
        )
        cells["Age"].append(str(18 + i % 80))
        cells["Sex"].append(["male", "female", ""][i % 3])
        cells["Job"].append(str(i % 4))
        cells["Housing"].append(["own", "rent", "free"][i % 3])
        cells["Saving accounts"].append(["little", "", "rich", HOSTILE[i % len(HOSTILE)]][i % 4])
        cells["Checking account"].append(["moderate", "NA", "little"][i % 3])
        cells["Credit amount"].append(amounts[i % len(amounts)])
        cells["Duration"].append(str(1 + i % 72))
        cells["Purpose"].append(["car", HOSTILE[(i + 3) % (len(HOSTILE) - 1)], "radio/TV"][i % 3])
    return pd.DataFrame(cells)


def scored_hostile(bundle: Bundle, *, explain: bool = False, rows: int = 60) -> Scored:
    applications = validate(hostile_applications(rows), on_unknown="unknown", schema=bundle.schema)
    assert len(applications) == rows and applications.has_ids, applications.reject_messages()
    scored = score(bundle, applications, explain=explain)
    scored.timestamp = 'a "hostile" \\ timestamp \x01 ü'
    return scored


def lines_of(scored: Scored) -> bytes:
    handle = io.BytesIO()
    write_json_lines(scored, handle)
    return handle.getvalue()


def polars_lines(table: pa.Table) -> bytes:
    """The writer before: Polars' write_ndjson, with dictionary columns as plain strings."""
    plain = pa.table(
        [_plain_strings(column.combine_chunks()) for column in table.columns], names=table.column_names
    )
    handle = io.BytesIO()
    pl.from_arrow(plain).write_ndjson(handle)  # type: ignore[union-attr]
    return handle.getvalue()


def _plain_strings(array: Any) -> Any:
    if pa.types.is_dictionary(array.type):
        return array.cast(pa.large_string())
    if pa.types.is_struct(array.type):
        children = [_plain_strings(child) for child in array.flatten()]
        return pa.StructArray.from_arrays(children, names=[f.name for f in array.type])
    return array


def parsed(text: bytes) -> list[str]:
    """Each line parsed, then written back canonically: key order and number types kept."""
    assert text.endswith(b"\n")
    return [json.dumps(json.loads(line)) for line in text.decode().split("\n")[:-1]]


@pytest.mark.parametrize("levels", [json_lines_module.LEVELS, 1], ids=["few-valued", "every-value"])
def test_hostile_results_parse_as_polars_wrote_them(
    bundle: Bundle, monkeypatch: pytest.MonkeyPatch, levels: int
) -> None:
    """With LEVELS at 1 every column takes the per-row path (ids, categories and numbers cast and
    escaped row by row), at the default the categories' texts are escaped once and picked."""
    monkeypatch.setattr(json_lines_module, "LEVELS", levels)
    scored = scored_hostile(bundle)
    ours = lines_of(scored)
    assert parsed(ours) == parsed(polars_lines(result_table(scored, nested=True)))
    assert parsed(ours) == [json.dumps(json.loads(orjson.dumps(r))) for r in result_objects(scored)]
    first = json.loads(ours.split(b"\n")[0])
    assert list(first) == ["id", "input_data", "probability_fraud", "is_fraud", "target", "confidence",
                           "timestamp"]  # fmt: skip
    assert first["id"] == HOSTILE[0] + "0" and first["timestamp"] == scored.timestamp
    amounts = [json.loads(line)["input_data"]["Credit amount"] for line in ours.split(b"\n")[:7]]
    assert amounts == [1234.5678901234567, 3.0, 9007199254740991.0, 0.1, 250.0, 1000.0, 7.000000000000001]
    assert all(isinstance(a, float) for a in amounts)  # a float column stays floats: 3.0, not 3
    assert b"\x00" not in ours and b"\x1f" not in ours and ours.count(b"\n") == len(scored)


def test_a_large_json_array_holds_the_same_objects(
    bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past SMALL results a JSON array is compact: the same objects, comma-separated, one line."""
    monkeypatch.setattr(results, "SMALL", 0)
    scored = scored_hostile(bundle)
    path = write_results(scored, tmp_path / "out.json", "json")
    text = path.read_bytes()
    assert text.startswith(b'[{"id":') and text.endswith(b"}]") and b"\n" not in text
    assert [json.dumps(item) for item in json.loads(text)] == parsed(lines_of(scored))


def test_reasons_parse_as_orjson_wrote_them(bundle: Bundle) -> None:
    """With --explain each line also has the decision and its reasons (nested JSON, not a string)."""
    scored = scored_hostile(bundle, explain=True, rows=12)
    assert scored.reasons is not None
    ours = lines_of(scored)
    assert parsed(ours) == [json.dumps(json.loads(orjson.dumps(r))) for r in result_objects(scored)]
    first = json.loads(ours.split(b"\n")[0])
    assert list(first)[-2:] == ["decision", "reasons"] and isinstance(first["reasons"], list)


def test_numbers_as_polars_writes_them() -> None:
    """Shortest round-trip floats, whole floats with .0, NaN and infinities as null, 64-bit ints."""
    floats = [3.0, -0.0, 0.1, 1 / 3, 1e-7, 1e16, 1e21, 5e-324, 1.7976931348623157e308, math.nan,
              math.inf, -math.inf, None, 0.11901381894875189]  # fmt: skip
    n = len(floats)
    table = pa.table(
        {
            "x": pa.array(floats, pa.float64()),
            "big": pa.array([2**63 - 1, -(2**63), None, 0] * (n // 4) + [1] * (n % 4), pa.int64()),
            "near": pa.array([5, 6, None, 7] * (n // 4) + [8] * (n % 4), pa.int32()),
            "flag": pa.array([True, False, None] * (n // 3) + [True] * (n % 3)),
            "none": pa.nulls(n),
            "same": pa.array(['é"\\'] * n),
        }
    )
    ours = b"".join(bytes(chunk) for chunk in json_lines(table))
    assert parsed(ours) == parsed(polars_lines(table))
    first, nan = json.loads(ours.split(b"\n")[0]), json.loads(ours.split(b"\n")[9])
    assert first["x"] == 3.0 and isinstance(first["x"], float) and first["big"] == 2**63 - 1
    assert nan["x"] is None


def test_batches_of_lines_are_the_lines_of_the_whole(bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    """Joined ROWS at a time, the bytes are the same as in one go: levels differ, texts do not."""
    scored = scored_hostile(bundle)
    whole = lines_of(scored)
    monkeypatch.setattr(json_lines_module, "ROWS", 7)
    assert lines_of(scored) == whole


def test_a_table_whose_every_column_is_constant() -> None:
    table = pa.table({"a": ["x"] * 3, "b": pa.nulls(3), "c": [True] * 3})
    ours = b"".join(bytes(chunk) for chunk in json_lines(table))
    assert ours == b'{"a":"x","b":null,"c":true}\n' * 3
    assert b"".join(bytes(c) for c in json_lines(table.slice(0, 0))) == b""


@pytest.mark.parametrize("kind", [pa.float64(), pa.float32()], ids=["float64", "float32"])
def test_float_texts_are_polars_texts_byte_for_byte(kind: Any) -> None:
    """The float column's texts (orjson's, cut at the commas) are the text Polars' cast gives,
    for random and extreme values, in a slice that starts inside the array, NaN and infinities
    (and a missing value) as null."""
    rng = np.random.default_rng(7)
    edges = [0.0, -0.0, 1.0, 3.0, 0.1, 1e-7, 1e16, 1e17, 1e21, 5e-324, 1.7976931348623157e308, 0.1 + 0.2]
    values = np.concatenate(
        [edges, rng.random(3000), rng.standard_normal(3000) * 10.0 ** rng.integers(-40, 40, 3000)]
    )
    array = pa.array(values, kind).slice(5)
    texts = pl.from_arrow(array).cast(pl.String).to_list()  # type: ignore[union-attr]
    # float32 overflows to infinity past 3.4e38: Polars writes inf, a JSON reader needs null
    expected = [t if math.isfinite(v) else "null" for t, v in zip(texts, array.to_pylist(), strict=True)]
    assert json_lines_module._floats(array).to_pylist() == expected
    odd = pa.array([1.5, None, math.nan, math.inf, -math.inf, 2.0], kind)
    assert json_lines_module._floats(odd).to_pylist() == ["1.5", "null", "null", "null", "null", "2.0"]
    assert json_lines_module._floats(pa.array([], kind)).to_pylist() == []
