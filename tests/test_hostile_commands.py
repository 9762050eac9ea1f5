"""Commands other than the file readers, used the wrong way: one line saying what is wrong, no harm done.

In-process through click's runner, against real bundles and files (fast).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from preauth.cli import cli


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


@pytest.fixture
def models(tmp_path: Path, small_models_dir: Path) -> Path:
    """A copy of the small bundle with the directory ``train --from-store`` writes beside it."""
    root = tmp_path / "models"
    shutil.copytree(small_models_dir, root)
    (root / "from-store").mkdir()
    return root


@pytest.mark.parametrize("name", ["from-store", "..", ".", ""])
def test_a_directory_that_is_not_a_version_is_no_model_never_a_bundle_to_remove(
    models: Path, name: str
) -> None:
    """``models show ..`` once said ``models/..: not a model bundle; retrain or remove it``."""
    result = invoke("--models-dir", models, "models", "show", name)
    assert result.exit_code == 3, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line == f"preauth: error: no model '{name}' in {models} (versions: v1)"


@pytest.mark.parametrize("trials", ["0", "-1"])
def test_run_refuses_bad_trials_before_it_labels_anything(tmp_path: Path, trials: str) -> None:
    """``run --trials 0`` once prepared and labelled every application (an LLM's calls) before saying no."""
    work = tmp_path / "work"
    result = invoke("--models-dir", tmp_path / "models", "run", "--workdir", work, "--trials", trials)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == "preauth: error: --trials must be at least 1"
    assert not work.exists()


def test_agreement_names_a_refused_row_of_the_truth_file_and_exits_2(
    tmp_path: Path, bundled_risk: Path
) -> None:
    """A truth row with ``Risk = maybe`` was once left out without a word: 4 of 5 compared, exit 0."""
    import pandas as pd

    truth = pd.read_csv(bundled_risk, dtype=str, keep_default_na=False).head(5)
    labels = truth.copy()
    labels["target"] = labels["Risk"] + " risk"
    truth.loc[2, "Risk"] = "maybe"
    truth.to_csv(tmp_path / "truth.csv", index=False)
    labels.to_csv(tmp_path / "labels.csv", index=False)
    result = invoke("agreement", tmp_path / "labels.csv", "--truth", tmp_path / "truth.csv", "--json")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[0] == (
        f"preauth: rejected: {tmp_path / 'truth.csv'}, row 3, column 'Risk': 'maybe' is not one of: good, bad"
    )
    import json

    figures = json.loads(result.stdout)
    assert figures["n"] == 4 and figures["accuracy"] == 1.0


@pytest.mark.parametrize("command", ["prepare", "schema infer"])
def test_a_dash_for_the_output_is_refused_not_written_as_a_file_named_dash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bundled_risk: Path, command: str
) -> None:
    """``-o -`` once wrote a file called ``-`` and exited 0, leaving the pipe that wanted it empty."""
    monkeypatch.chdir(tmp_path)
    result = invoke(*command.split(), bundled_risk, "-o", "-")
    # prepare checks its output as an option, before reading anything (exit 2); schema infer on writing.
    assert result.exit_code == {"prepare": 2, "schema infer": 1}[command], result.output
    assert "-: not standard output here; name a file to write" in result.stderr
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_outcomes_import_names_a_row_with_the_wrong_field_count_for_what_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Such a row was once refused as lacking a decision id (a 2-field row had one)."""
    from preauth.store import DecisionStore

    monkeypatch.chdir(tmp_path)  # the rejects file goes to the current directory

    url = f"sqlite:///{tmp_path / 'x.db'}"
    DecisionStore(url).migrate()
    book = tmp_path / "book.csv"
    book.write_text(
        "decision_id,outcome,known_at\nx,repaid,2026-01-01\ny,repaid,2026-01-01,extra\nz,repaid\n",
        encoding="utf-8",
    )
    result = invoke("outcomes", "import", book, "--database-url", url)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[:3] == [
        f"preauth: rejected: {book}, row 1, column 'decision_id': no stored decision has this id",
        f"preauth: rejected: {book}, row 2: has 4 fields, the header has 3",
        f"preauth: rejected: {book}, row 3: has 2 fields, the header has 3",
    ]


@pytest.mark.parametrize(
    "command", [["models", "show", "shadow"], ["models", "promote", "v1"], ["models", "list"]]
)
def test_an_alias_that_is_not_text_is_one_line_naming_it(models: Path, command: list[str]) -> None:
    """A hand-edited ``"shadow": 5`` once ended ``models show shadow`` in a TypeError traceback."""
    (models / "aliases.json").write_text('{"production": "v1", "shadow": 5}', encoding="utf-8")
    result = invoke("--models-dir", models, *command)
    assert result.exit_code == 3, result.output
    assert result.stderr.strip() == (
        f"preauth: error: {models / 'aliases.json'}: alias 'shadow' points at 5, not a version of this directory"
    )


def test_a_file_in_the_way_of_an_output_directory_is_named_as_such(
    tmp_path: Path, bundled_risk: Path
) -> None:
    """``-o notes.txt/out.csv`` and ``run --workdir notes.txt`` once said ``notes.txt: File exists``."""
    notes = tmp_path / "notes.txt"
    notes.write_text("mine", encoding="utf-8")
    expected = f"preauth: error: {notes}: is a file, not a directory: nothing can be written in it"
    result = invoke("--models-dir", tmp_path / "models", "run", "--workdir", notes, "--trials", "1")
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == expected
    # A single output file is checked before any work, as an option (exit 2), with the same words.
    result = invoke(
        "--models-dir", tmp_path / "models", "prepare", bundled_risk, "-o", notes / "out" / "p.csv"
    )
    assert result.exit_code == 2, result.output
    assert f"{notes}: is a file, not a directory: nothing can be written in it" in result.stderr
    assert notes.read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize("rpm", ["1e-300", "0.001"])
def test_a_rate_no_clock_can_wait_for_is_one_line_before_labelling(
    tmp_path: Path, bundled_risk: Path, rpm: str
) -> None:
    """``label --rpm 1e-300`` once labelled one applicant, then ended in an OverflowError traceback."""
    out = tmp_path / "labels.csv"
    result = invoke("label", bundled_risk, "-o", out, "--rpm", rpm)
    assert result.exit_code == 2, result.output
    assert (
        result.stderr.strip()
        == f"preauth: error: --rpm must be at least 0.01 (requests per minute), got {rpm}"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PREAUTH_MAX_BODY_BYTES", "-1", "input should be greater than 0"),
        ("PREAUTH_MONITOR_WINDOW_DAYS", "1e300", "input should be less than or equal to 36525"),
    ],
)
def test_serve_refuses_settings_that_would_fail_every_request_or_refresh(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    """A body limit of -1 once answered every request 413; a window of 1e300 days failed every refresh."""
    result = CliRunner().invoke(cli, ["--models-dir", str(tmp_path), "serve"], env={variable: value})
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"preauth: error: {variable}: {message} (set in the environment)"


def test_a_damaged_trials_file_is_one_line_naming_the_bundle(tmp_path: Path) -> None:
    """A trials.csv cut inside a quoted cell once ended ``report --rebuild`` in pandas' traceback."""
    from preauth.errors import ModelBundleError
    from preauth.report.search import read_trials

    (tmp_path / "trials.csv").write_text('number,value\n0,"0.7\n', encoding="utf-8")
    with pytest.raises(ModelBundleError) as raised:
        read_trials(tmp_path)
    assert str(raised.value).startswith(f"{tmp_path}: unreadable trials.csv (Error tokenizing data.")
    assert str(raised.value).endswith("); retrain to get a report")


def test_a_damaged_holdout_is_one_line_when_the_report_is_rebuilt(models: Path) -> None:
    """A truncated ``holdout.parquet`` once ended ``report --rebuild`` in Arrow's traceback."""
    (models / "v1" / "holdout.parquet").write_bytes(b"junk\n")
    result = invoke("--models-dir", models, "report", "v1", "--rebuild", "--no-open")
    assert result.exit_code == 3, result.output
    assert result.stderr.strip() == (
        f"preauth: error: {models / 'v1'}: unreadable holdout.parquet (Parquet file size is 5 bytes, "
        "smaller than the minimum file footer (8 bytes)); retrain to get a report"
    )
    assert not (models / "v1" / "report.html").exists()


def test_a_since_no_utc_date_can_hold_is_one_line_naming_the_option(tmp_path: Path) -> None:
    """``--since 0001-01-01T00:00:00+14:00`` once ended ``decisions export`` in an OverflowError traceback."""
    from preauth.store import DecisionStore

    url = f"sqlite:///{tmp_path / 'x.db'}"
    DecisionStore(url).migrate()
    out = tmp_path / "d.csv"
    args = ["decisions", "export", "--database-url", url, "--out", out]
    result = invoke(*args, "--since", "0001-01-01T00:00:00+14:00")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: Invalid value for '--since': 0001-01-01T00:00:00+14:00 is outside the years 1-9999 in UTC"
    )
    assert not out.exists()
