"""The command line's promise for bad input and unusable paths: one line, the path, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PREAUTH = [sys.executable, "-m", "preauth"]


def preauth(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PREAUTH, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_an_input_that_is_not_utf8_is_one_line_with_its_row(tmp_path: Path) -> None:
    source = tmp_path / "apps.csv"
    source.write_bytes(
        b"Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose\n"
        b"30,male,2,own,little,little,1000,12,caf\xe9\n"
    )
    result = preauth("prepare", source, "-o", tmp_path / "out.csv")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"preauth: error: {source}, row 1: not UTF-8 text (byte 0xe9 on line 2); save the file as UTF-8"
    )


def test_predict_needs_every_column_the_model_uses(tmp_path: Path, bundled_risk: Path) -> None:
    import xgboost as xgb

    from preauth.applications import feature_columns, read_applications
    from preauth.bundles import save_bundle
    from preauth.features import encode, feature_types

    applications = read_applications(bundled_risk)
    columns = feature_columns(include=["Sex"])
    y = (applications.frame["Risk"] == "bad").to_numpy()
    data = xgb.DMatrix(
        encode(applications.frame, columns),
        label=y,
        feature_types=feature_types(columns),
        enable_categorical=True,
        feature_names=columns,
    )
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2}, data, 5)
    save_bundle(tmp_path / "models", booster, features=columns, threshold=0.5, meta={})
    source = tmp_path / "apps.csv"
    source.write_text(
        "Age,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose\n"
        "30,2,own,little,little,1000,12,car\n"
    )
    result = preauth("--models-dir", tmp_path / "models", "predict", source, "-o", tmp_path / "results")
    assert result.returncode == 2
    assert result.stderr.strip() == f"preauth: error: {source}: missing required column 'Sex'"


def test_an_output_named_json_is_refused_before_any_work(tmp_path: Path, bundled_data: Path) -> None:
    for command in ("prepare", "describe", "label"):
        for name in ("out.json", "out.xlsx"):
            result = preauth(command, bundled_data, "-o", name, cwd=tmp_path)
            assert result.returncode == 2, command
            assert f"'{name}' is not a CSV or Parquet name; name it .csv (or .parquet)" in result.stderr
    result = preauth("sample", bundled_data, "-o", "out.json", cwd=tmp_path)
    assert result.returncode == 2 and "'out.json' would hold CSV; name it .csv" in result.stderr
    result = preauth("sample", bundled_data, "-o", "out.parquet", cwd=tmp_path)
    assert result.returncode == 2 and "'out.parquet' would hold CSV; name it .csv" in result.stderr
    assert not list(tmp_path.iterdir())


def test_an_output_that_can_never_be_written_is_refused_before_any_work(
    tmp_path: Path, bundled_data: Path
) -> None:
    """``describe -o DIR`` once wrote every description (paid LLM calls) and then failed on the write."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    for command in ("prepare", "describe", "label", "sample"):
        for name, reason in (
            ("folder", "folder: is a folder; name a file to write"),
            ("notes.txt/out.csv", "notes.txt: is a file, not a directory: nothing can be written in it"),
        ):
            result = preauth(command, bundled_data, "-o", name, cwd=tmp_path)
            assert result.returncode == 2, (command, result.stderr)
            assert reason in result.stderr, (command, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "notes.txt"]
    assert not list((tmp_path / "folder").iterdir())


def test_deeply_nested_json_is_one_line_not_a_recursion_traceback(tmp_path: Path) -> None:
    source = tmp_path / "deep.json"
    source.write_text("[" * 100_000 + "]" * 100_000)
    result = preauth("prepare", source, "-o", tmp_path / "out.csv")
    assert result.returncode == 2
    assert result.stderr == (
        f"preauth: error: {source}: JSON nested too deeply; an application is one object of plain values\n"
    )


def test_a_number_past_2_53_is_refused_on_one_line_without_a_warning(tmp_path: Path) -> None:
    source = tmp_path / "apps.csv"
    source.write_text(
        "Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose\n"
        "30,male,2,own,little,little,1000,12,car\n"
        "30,male,2,own,little,little,1e20,12,car\n"
    )
    result = preauth("prepare", source, "-o", tmp_path / "out.csv")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"preauth: rejected: {source}, row 2, column 'Credit amount': 1e20 is too large (at most 9,007,199,254,740,991)",
        f"preauth: 1 rejected rows with reasons in {tmp_path / 'out.rejects.csv'}",
    ]
    assert "-9223372036854775808" not in (tmp_path / "out.csv").read_text()


def test_an_output_that_is_a_pipe_is_refused_not_replaced(tmp_path: Path, bundled_data: Path) -> None:
    import os
    import stat

    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    result = preauth("prepare", bundled_data, "-o", fifo)
    assert result.returncode == 2
    assert f"{fifo}: not a regular file; name a file to write" in result.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still the pipe, not a file renamed over it


def test_a_corrupt_model_file_is_one_line_without_xgboosts_source_path(
    tmp_path: Path, small_models_dir: Path, bundled_data: Path
) -> None:
    import shutil

    models = Path(shutil.copytree(small_models_dir, tmp_path / "models"))
    (models / "v1" / "model.ubj").write_bytes(b"junk")
    result = preauth("--models-dir", models, "predict", bundled_data, "-o", tmp_path / "results")
    assert result.returncode == 3
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"preauth: error: {models / 'v1'}: cannot load model.ubj (")
    assert ".cc:" not in line and "/workspace" not in line, line


def test_commands_that_read_the_store_refuse_a_store_that_does_not_exist(tmp_path: Path) -> None:
    """A mistyped SQLite URL is one line naming it, not a new empty store reporting 0 decisions."""
    from click.testing import CliRunner

    from preauth.cli import cli

    missing = tmp_path / "typo" / "preauth.db"
    url = f"sqlite:///{missing}"
    book = tmp_path / "book.csv"
    book.write_text("decision_id,outcome,known_at\nx,repaid,2026-01-01\n", encoding="utf-8")
    for command in (
        ["decisions", "export", "--out", str(tmp_path / "out.csv"), "--database-url", url],
        ["outcomes", "import", str(book), "--database-url", url],
        ["train", "--from-store", "--database-url", url],
    ):
        result = CliRunner().invoke(cli, ["--models-dir", str(tmp_path / "models"), *command])
        assert result.exit_code == 2, (command, result.output)
        assert f"no decision store at {url}" in result.output, command
        assert not missing.parent.exists(), command


def test_a_setting_the_environment_gives_wrong_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    """A PREAUTH_* value pydantic refuses was a traceback from any command, serve included."""
    import os

    for variable, value, reason in (
        ("PREAUTH_BATCH_ROWS", "-1", "input should be greater than or equal to 1"),
        ("SAGEMAKER_BIND_TO_PORT", "http", "input should be a valid integer"),
        ("PREAUTH_DIRECT_WRITES", "maybe", "input should be a valid boolean"),
    ):
        for command in (
            (["serve", "--port", "1"],) if variable != "PREAUTH_BATCH_ROWS" else (["models", "list"],)
        ):
            result = subprocess.run(
                [*PREAUTH, *command],
                capture_output=True,
                text=True,
                cwd=tmp_path,
                timeout=120,
                env={**os.environ, variable: value},
            )
            assert result.returncode == 2, result.stderr
            assert result.stderr.startswith(f"preauth: error: {variable}: {reason}")
            assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_nan_is_refused_by_every_number_range_option(tmp_path: Path) -> None:
    """click's ranges let ``nan`` through (it compares false with both bounds)."""
    for command in (["label", "x.csv", "--temperature", "nan"], ["train", "x.csv", "--threshold", "nan"]):
        result = preauth(*command, cwd=tmp_path)
        assert result.returncode == 2 and "nan is not a number" in result.stderr, (command, result.stderr)


def test_serve_refuses_an_address_it_cannot_listen_on_in_one_line(tmp_path: Path) -> None:
    """--port 99999 used to serve on 34463 (99999 mod 65536) while saying 99999; an unknown host
    or a port in use was uvicorn's JSON log line and exit 3, after the model had loaded."""
    import socket

    assert "99999 is not in the range 1<=x<=65535" in preauth("serve", "--port", "99999", cwd=tmp_path).stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = preauth("serve", "--port", str(port), cwd=tmp_path)
    assert busy.returncode == 2
    assert busy.stderr.strip() == f"preauth: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    unknown = preauth("serve", "--host", "no-such-host.invalid", cwd=tmp_path)
    assert unknown.returncode == 2 and unknown.stderr.startswith(
        "preauth: error: cannot listen on no-such-host.invalid:8080"
    )


def test_an_in_memory_decision_store_is_refused(tmp_path: Path, small_models_dir: Path) -> None:
    """serve --database-url sqlite:// answered 201 for a decision and 500 when asked for it (each
    thread saw a database of its own, all gone at exit): acknowledged and not kept."""
    from preauth.errors import ConfigurationError
    from preauth.store import DecisionStore

    for url in ("sqlite://", "sqlite:///", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"):
        with pytest.raises(ConfigurationError, match="is an in-memory database"):
            DecisionStore(url)
    served = preauth("--models-dir", small_models_dir, "serve", "--database-url", "sqlite://", cwd=tmp_path)
    assert served.returncode == 2 and "is an in-memory database" in served.stderr


def test_decisions_export_takes_its_format_from_the_file_name_and_refuses_a_mismatch(tmp_path: Path) -> None:
    """``--format parquet --out x.csv`` wrote Parquet bytes into a .csv a spreadsheet then opened
    as garbage; ``--out q3.parquet`` alone wrote CSV into a .parquet."""
    from preauth.store import DecisionStore

    url = f"sqlite:///{tmp_path / 'store.db'}"
    DecisionStore(url).migrate()
    mismatch = preauth(
        "decisions", "export", "--database-url", url, "--format", "parquet", "--out", "x.csv", cwd=tmp_path
    )
    assert mismatch.returncode == 2 and "--format parquet but --out x.csv names a csv file" in mismatch.stderr
    assert not (tmp_path / "x.csv").exists()
    named = preauth("decisions", "export", "--database-url", url, "--out", "q3.parquet", cwd=tmp_path)
    assert named.returncode == 0, named.stderr
    assert (tmp_path / "q3.parquet").read_bytes()[:4] == b"PAR1"
