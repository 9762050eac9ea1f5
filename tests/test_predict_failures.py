"""`preauth predict` failing partway (a full disk, a booster that fails on one batch): one line
naming what failed, a non-zero exit, no results file, no temporary file, and nothing written after
the batch that failed."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from preauth import results
from preauth.bundles import Bundle
from preauth.cli import cli
from preauth.formats import FORMATS
from preauth.scoring import Scored

BATCH = 100  # the bundled file's 1,000 applications are 10 batches
XGBOOST_ERROR = (
    "[01:02:03] /workspace/src/predictor/cpu_predictor.cc:123: Check failed: allocation of the "
    "prediction buffer\nStack trace:\n  [bt] (0) libxgboost.so(+0x1234)"
)


def predict_args(models: Path, source: Path, out: Path, fmt: str) -> list[str]:
    return [
        "--models-dir",
        str(models),
        "predict",
        str(source),
        "-o",
        str(out),
        "--format",
        fmt,
        "--batch-rows",
        str(BATCH),
    ]


def _names_the_results_file(stderr: str, out: Path, fmt: str, reason: str) -> None:
    """One line: the results file that could not be written (it never appears), and why."""
    (line,) = stderr.splitlines()
    results_file = rf"{re.escape(str(out))}/inference_results_\d{{8}}_\d{{6}}\.{fmt}"
    assert re.fullmatch(rf"preauth: error: {results_file}: {reason}", line), line


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_full_disk_is_one_line_naming_the_results_file_and_leaves_nothing(
    tmp_path: Path, bundled_data: Path, small_models_dir: Path, fmt: str
) -> None:
    """A real write failure: the process may write no file past 30 kB (RLIMIT_FSIZE; Python
    ignores SIGXFSZ, so the write fails with EFBIG as on a full disk) and the results outgrow it."""
    out = tmp_path / "results"
    program = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, 30_000)); "
        "from preauth.cli import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, *predict_args(small_models_dir, bundled_data, out, fmt)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    _names_the_results_file(done.stderr, out, fmt, "File too large.*")
    assert done.stdout == ""
    assert list(out.iterdir()) == []  # no results file, no temporary file


def test_a_full_disk_while_writing_rejects_names_the_rejects_file_and_leaves_nothing(
    tmp_path: Path, bundled_data: Path, small_models_dir: Path
) -> None:
    """Rejects are written as they come: past the limit it is the rejects file that fails, named
    (it was "preauth: error: File too large", no file named), and neither file is left."""
    source = tmp_path / "bad.csv"
    lines = bundled_data.read_text().splitlines()
    source.write_text(
        "\n".join(
            [
                lines[0],
                *(
                    line.replace(",own,", ",castle,")
                    .replace(",rent,", ",castle,")
                    .replace(",free,", ",castle,")
                    for line in lines[1:]
                ),
                "",
            ]
        )
    )
    out = tmp_path / "results"
    program = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, 30_000)); "
        "from preauth.cli import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, *predict_args(small_models_dir, source, out, "jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.splitlines()
    assert re.fullmatch(
        rf"preauth: error: {re.escape(str(out))}/inference_results_\d{{8}}_\d{{6}}\.rejects\.csv: File too large.*",
        line,
    ), line
    assert list(out.iterdir()) == []


class _Writes:
    """Wraps the real writer of a format: records each batch it is given, fails on one of them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fmt: str, *, fail_on: int | None = None) -> None:
        self.batches: list[int] = []
        real = results._WRITERS[fmt]
        seen = self

        class Watched(real):  # type: ignore[misc, valid-type]
            def write(self, scored: Scored) -> None:
                seen.batches.append(len(scored))
                if len(seen.batches) == fail_on:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                super().write(scored)

        monkeypatch.setitem(results._WRITERS, fmt, Watched)


def _booster_failing_on_call(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The booster raises XGBoost's own error (with its source path and stack) on its n-th batch."""
    import xgboost

    calls = iter(range(1, 10_000))
    real = Bundle.raw_proba

    def raw_proba(self: Bundle, matrix):  # type: ignore[no-untyped-def]
        if next(calls) == n:
            raise xgboost.core.XGBoostError(XGBOOST_ERROR)
        return real(self, matrix)

    monkeypatch.setattr(Bundle, "raw_proba", raw_proba)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_write_failing_on_batch_2_stops_the_writing_and_leaves_nothing(
    tmp_path: Path, bundled_data: Path, small_models_dir: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = _Writes(monkeypatch, fmt, fail_on=2)
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, predict_args(small_models_dir, bundled_data, out, fmt))
    assert result.exit_code == 1, result.output
    _names_the_results_file(result.stderr, out, fmt, "No space left on device")
    assert writes.batches == [BATCH, BATCH]  # batches 3 to 10 were never written
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_booster_failing_on_batch_2_is_one_line_naming_the_rows(
    tmp_path: Path, bundled_data: Path, small_models_dir: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = _Writes(monkeypatch, fmt)
    _booster_failing_on_call(2, monkeypatch)
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, predict_args(small_models_dir, bundled_data, out, fmt))
    assert result.exit_code == 3, result.output
    (line,) = result.stderr.splitlines()
    assert line == (
        f"preauth: error: {bundled_data}, rows 101-200: model v1 could not score them "
        "(Check failed: allocation of the prediction buffer)"
    )
    assert writes.batches == [BATCH]  # batch 1 only: nothing after the batch that failed
    assert list(out.iterdir()) == []


def test_a_booster_failing_in_a_real_process_exits_with_one_line(
    tmp_path: Path, bundled_data: Path, small_models_dir: Path
) -> None:
    """The same through a real `preauth predict` process: its exit code and its whole stderr."""
    out = tmp_path / "results"
    program = f"""
import xgboost
from preauth.bundles import Bundle
calls, real = iter(range(1, 10_000)), Bundle.raw_proba
def raw_proba(self, matrix):
    if next(calls) == 5:
        raise xgboost.core.XGBoostError({XGBOOST_ERROR!r})
    return real(self, matrix)
Bundle.raw_proba = raw_proba
from preauth.cli import main
main()
"""
    done = subprocess.run(
        [sys.executable, "-c", program, *predict_args(small_models_dir, bundled_data, out, "jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"preauth: error: {bundled_data}, rows 401-500: model v1 could not score them "
        "(Check failed: allocation of the prediction buffer)"
    ]
    assert list(out.iterdir()) == []
