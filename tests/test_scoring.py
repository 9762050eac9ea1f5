"""Scoring and results files: the original format key for key, every output format, atomic writes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from preauth import results
from preauth.applications import read_applications
from preauth.bundles import load_bundle
from preauth.formats import FORMATS
from preauth.results import write_results
from preauth.scoring import Scored, result_objects, score

PREAUTH = [sys.executable, "-m", "preauth"]


def preauth(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PREAUTH, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def _shape(value: object) -> object:
    """The type structure of a JSON value: what 'type for type' compares."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def test_results_match_the_original_format_key_for_key(
    original_dir: Path, small_models_dir: Path, tmp_path: Path
) -> None:
    original = json.loads((original_dir / "inference_results_20250724_222848.json").read_text())
    result = preauth(
        "--models-dir", small_models_dir, "predict", original_dir / "sample_transactions.csv", "-o", tmp_path
    )
    assert result.returncode == 0, result.stderr
    [path] = tmp_path.glob("inference_results_*.json")
    assert path.name[len("inference_results_") :][:15].replace("_", "").isdigit()
    ours = json.loads(path.read_text())
    assert len(ours) == len(original) == 2
    for mine, theirs in zip(ours, original, strict=True):
        assert list(mine) == list(theirs)
        assert _shape(mine) == _shape(theirs)
        assert mine["input_data"] == theirs["input_data"]  # same rows, same names, nulls kept
        p = mine["probability_fraud"]
        assert 0.0 <= p <= 1.0
        assert mine["confidence"] == pytest.approx(max(p, 1 - p))
        assert mine["target"] == ("bad risk" if mine["is_fraud"] else "good risk")
        datetime.fromisoformat(mine["timestamp"])


@pytest.mark.parametrize("small", [results.SMALL, 0], ids=["indented", "native-writer"])
def test_every_format_holds_the_same_results(
    small_models_dir: Path, bundled_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small: int
) -> None:
    monkeypatch.setattr(results, "SMALL", small)
    bundle = load_bundle(small_models_dir)
    scored = score(bundle, read_applications(bundled_data))
    expected = result_objects(scored)
    assert sum(r["is_fraud"] for r in expected) == int((scored.probability >= bundle.threshold).sum())
    for fmt in FORMATS:
        path = write_results(scored, tmp_path / f"out.{fmt}", fmt)  # type: ignore[arg-type]
        if fmt == "json":
            got = json.loads(path.read_text())
        elif fmt == "jsonl":
            got = [json.loads(line) for line in path.read_text().splitlines()]
        elif fmt == "parquet":
            got = pq.read_table(path).to_pylist()
        else:
            frame = pd.read_csv(path, keep_default_na=False)
            assert frame["probability_fraud"].tolist() == pytest.approx(
                [r["probability_fraud"] for r in expected]
            )
            assert frame["target"].tolist() == [r["target"] for r in expected]
            assert frame["Age"].tolist() == [r["input_data"]["Age"] for r in expected]
            continue
        assert got == expected, fmt


def test_a_failed_write_leaves_no_file(
    small_models_dir: Path, bundled_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scored = score(load_bundle(small_models_dir), read_applications(bundled_data))

    class Broken(results._WRITERS["json"]):  # type: ignore[misc, valid-type]
        def write(self, scored: Scored) -> None:
            self.handle.write(b'[{"input_data": ')
            raise OSError("disk full")

    monkeypatch.setitem(results._WRITERS, "json", Broken)
    with pytest.raises(OSError):
        write_results(scored, tmp_path / "out.json", "json")
    assert list(tmp_path.iterdir()) == []


def test_predict_keeps_good_rows_and_rejects_bad_ones(small_models_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "apps.csv"
    source.write_text(
        "Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose\n"
        "30,male,2,own,little,moderate,1000,12,car\n"
        "30,male,2,own,little,moderate,-1,12,car\n"
        "44,female,1,rent,,,5000,36,business\n"
    )
    out = tmp_path / "results"
    result = preauth("--models-dir", small_models_dir, "predict", source, "-o", out, "--format", "jsonl")
    assert result.returncode == 2
    assert f"{source}, row 2, column 'Credit amount': -1 is not positive" in result.stderr
    assert "Traceback" not in result.stderr
    [results] = out.glob("*.jsonl")
    assert [json.loads(line)["input_data"]["Age"] for line in results.read_text().splitlines()] == [30, 44]
    [rejects] = out.glob("*.rejects.csv")
    frame = pd.read_csv(rejects)
    assert frame[["row", "column"]].values.tolist() == [[2, "Credit amount"]]
    assert not list(out.glob(".*"))  # no temporary files left behind


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "file is empty"),
        ("Age,Sex\n30,male\n", "missing required column 'Job'"),
    ],
)
def test_predict_bad_files_exit_2_with_one_line(
    small_models_dir: Path, tmp_path: Path, content: str, message: str
) -> None:
    source = tmp_path / "bad.csv"
    source.write_text(content)
    result = preauth("--models-dir", small_models_dir, "predict", source, "-o", tmp_path / "r")
    assert result.returncode == 2
    assert result.stderr.strip() == f"preauth: error: {source}: {message}"
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").iterdir())


def test_predict_without_a_model_says_so(tmp_path: Path, bundled_data: Path) -> None:
    result = preauth("--models-dir", tmp_path / "none", "predict", bundled_data)
    assert result.returncode == 3
    assert "run `preauth train` first" in result.stderr and "Traceback" not in result.stderr


def test_sample_round_trip_from_a_results_file(
    original_dir: Path, small_models_dir: Path, tmp_path: Path
) -> None:
    sample = tmp_path / "sample.csv"
    result = preauth("sample", original_dir / "inference_results_20250724_222848.json", "-o", sample)
    assert result.returncode == 0, result.stderr
    assert sample.read_text() == (original_dir / "sample_transactions.csv").read_text()
    single = tmp_path / "one.json"
    single.write_text(
        json.dumps(
            {
                "Age": 40,
                "Sex": "female",
                "Job": 3,
                "Housing": "free",
                "Credit amount": 900,
                "Duration": 6,
                "Purpose": "repairs",
                "Checking account": "rich",
            }
        )
    )
    result = preauth("sample", single, "-o", tmp_path / "one.csv")
    assert result.returncode == 0, result.stderr
    result = preauth("--models-dir", small_models_dir, "predict", tmp_path / "one.csv", "-o", tmp_path / "r")
    assert result.returncode == 0, result.stderr


def test_prepare_writes_canonical_layout(bundled_risk: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared.csv"
    result = preauth("prepare", bundled_risk, "-o", out)
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns)[:2] == ["id", "Age"] and "Risk" in frame.columns
    assert (frame["Saving accounts"] == "unknown").sum() == 183


def test_predict_explain_adds_reasons_in_every_format(
    small_models_dir: Path, bundled_data: Path, tmp_path: Path
) -> None:
    result = preauth("--models-dir", small_models_dir, "predict", bundled_data, "-o", tmp_path, "--explain")
    assert result.returncode == 0, result.stderr
    [path] = tmp_path.glob("*.json")
    decisions = json.loads(path.read_text())
    for decision in decisions[:50]:
        reasons = decision["reasons"]
        assert 1 <= len(reasons) <= 4
        assert {r["feature"] for r in reasons} <= set(load_bundle(small_models_dir).features)
        toward_bad = [r for r in reasons if r["contribution"] > 0]
        assert all("bad" in r["direction"] for r in toward_bad)
    result = preauth(
        "--models-dir",
        small_models_dir,
        "predict",
        bundled_data,
        "-o",
        tmp_path,
        "--explain",
        "--format",
        "parquet",
    )
    assert result.returncode == 0, result.stderr
    [parquet] = tmp_path.glob("*.parquet")
    # Values mix numbers and categories, so columnar formats keep each row's reasons as JSON text.
    assert json.loads(pq.read_table(parquet).to_pylist()[0]["reasons"]) == decisions[0]["reasons"]


def test_the_schema_sets_how_far_past_the_training_range_an_application_is_referred(
    small_models_dir: Path,
) -> None:
    import dataclasses

    from preauth.referral import SEEN_KEY, refer_reasons

    bundle = load_bundle(small_models_dir)
    seen = bundle.meta[SEEN_KEY]["Credit amount"]
    just_past = dict(bundle.schema.example(), **{"Credit amount": seen["max"] + 100})

    def with_margin(margin: float) -> list[dict[str, object]]:
        schema = dataclasses.replace(bundle.schema, refer_margin=margin)
        return refer_reasons(dataclasses.replace(bundle, schema=schema), just_past)

    [reason] = with_margin(0)
    assert reason["feature"] == "Credit amount" and reason["direction"] == "refer"
    assert with_margin(0.05) == [] and refer_reasons(bundle, just_past) == []  # the default, 0.10
    # A field's own margin wins over the schema's.
    amount = dataclasses.replace(bundle.schema.field("Credit amount"), refer_margin=0.0)
    fields = tuple(amount if f.name == "Credit amount" else f for f in bundle.schema.fields)
    schema = dataclasses.replace(bundle.schema, fields=fields, refer_margin=0.5)
    assert len(refer_reasons(dataclasses.replace(bundle, schema=schema), just_past)) == 1


def test_predict_explain_refers_a_row_outside_the_training_data(
    small_models_dir: Path, bundled_data: Path, tmp_path: Path
) -> None:
    rows = pd.read_csv(bundled_data, index_col=0).head(3)
    rows.loc[rows.index[1], ["Age", "Credit amount"]] = [18, 1_000_000]
    source = tmp_path / "applications.csv"
    rows.to_csv(source)
    out = tmp_path / "out"
    result = preauth("--models-dir", small_models_dir, "predict", source, "-o", out, "--explain")
    assert result.returncode == 0, result.stderr
    [path] = out.glob("*.json")
    first, far, third = json.loads(path.read_text())
    assert far["decision"] == "refer"
    assert far["reasons"][0]["direction"] == "refer" and far["reasons"][0]["feature"] == "Credit amount"
    assert far["target"] in {"good risk", "bad risk"}  # the model's own answer is kept beside it
    for normal in (first, third):
        assert normal["decision"] == ("decline" if normal["is_fraud"] else "approve")
        assert all(r["direction"] != "refer" for r in normal["reasons"])
    # Without --explain the original result objects stay key for key.
    plain = tmp_path / "plain"
    assert preauth("--models-dir", small_models_dir, "predict", source, "-o", plain).returncode == 0
    [path] = plain.glob("*.json")
    assert "decision" not in json.loads(path.read_text())[1]


def test_written_files_are_readable_by_others(
    small_models_dir: Path, bundled_data: Path, tmp_path: Path
) -> None:
    scored = score(load_bundle(small_models_dir), read_applications(bundled_data))
    path = write_results(scored, tmp_path / "out.json", "json")
    assert path.stat().st_mode & 0o777 == 0o644
    assert (small_models_dir / "v1").stat().st_mode & 0o777 == 0o755
