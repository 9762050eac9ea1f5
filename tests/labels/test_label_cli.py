"""`preauth describe`, `preauth label` and `preauth agreement` through the real CLI, bad input included."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from openai_server import ChatServer

from preauth.cli import cli

DATA = Path(__file__).resolve().parents[2] / "src" / "preauth" / "data"
RISK = DATA / "german_credit_risk.csv"


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def one_line_error(result: Result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("preauth: error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_label_rules_writes_the_labels_file_and_reports_agreement(tmp_path: Path) -> None:
    out = tmp_path / "labels.csv"
    result = invoke("label", RISK, "-o", out, "--no-progress")
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(frame.columns) == [
        "Age",
        "Sex",
        "Job",
        "Housing",
        "Saving accounts",
        "Checking account",
        "Credit amount",
        "Duration",
        "Purpose",
        "Risk",
        "id",
        "description",
        "target",
        "rationale",
        "provider",
        "model",
        "prompt_version",
        "raw_answer",
    ]
    assert len(frame) == 1000 and frame["id"].tolist()[:2] == ["0", "1"]
    assert "accuracy" in result.stdout and "Cohen's kappa" in result.stdout and "truth bad" in result.stdout
    assert "measured against: Risk in german_credit_risk.csv" in result.stdout
    assert "rules/rubric-v1" in result.stdout


def test_describe_then_label_classifies_the_given_descriptions(
    chat_server: ChatServer, tmp_path: Path
) -> None:
    source = tmp_path / "apps.csv"
    pd.read_csv(RISK, dtype=str, keep_default_na=False).head(5).to_csv(source, index=False)
    common = [
        "--llm",
        "openai:m",
        "--base-url",
        chat_server.url,
        "--cache",
        tmp_path / "c.sqlite",
        "--no-progress",
    ]
    described = invoke("describe", source, "-o", tmp_path / "d.csv", *common)
    assert described.exit_code == 0, described.output
    d = pd.read_csv(tmp_path / "d.csv", dtype=str, keep_default_na=False)
    assert list(d.columns[-5:]) == ["id", "description", "provider", "model", "prompt_version"]
    assert chat_server.count("describe") == 5
    labelled = invoke("label", tmp_path / "d.csv", "-o", tmp_path / "l.csv", *common)
    assert labelled.exit_code == 0, labelled.output
    assert chat_server.count("describe") == 5 and chat_server.count("classify") == 5
    labels = pd.read_csv(tmp_path / "l.csv", dtype=str, keep_default_na=False)
    assert labels["description"].tolist() == d["description"].tolist()


def test_api_key_comes_from_the_environment_and_is_not_printed(
    chat_server: ChatServer, tmp_path: Path
) -> None:
    chat_server.api_key = "sk-from-env"
    source = tmp_path / "apps.csv"
    pd.read_csv(RISK, dtype=str, keep_default_na=False).head(2).to_csv(source, index=False)
    args = [
        "label",
        source,
        "-o",
        tmp_path / "l.csv",
        "--llm",
        "openai:m",
        "--base-url",
        chat_server.url,
        "--no-cache",
        "--no-progress",
    ]
    ok = invoke(*args, env={"OPENAI_API_KEY": "sk-from-env"})
    assert ok.exit_code == 0 and "sk-from-env" not in ok.output
    refused = invoke(*args, env={"PREAUTH_OPENAI_API_KEY": "sk-wrong", "OPENAI_API_KEY": ""})
    one_line_error(refused, 4, "refused the credentials", "PREAUTH_OPENAI_API_KEY")
    assert "sk-wrong" not in refused.output


def test_bad_rows_go_to_rejects_and_the_rest_is_labelled(tmp_path: Path) -> None:
    table = pd.read_csv(RISK, dtype=str, keep_default_na=False).head(5)
    table.loc[1, "Age"] = "seven"
    table.loc[3, "Purpose"] = "yacht"
    table.to_csv(tmp_path / "apps.csv", index=False)
    result = invoke("label", tmp_path / "apps.csv", "-o", tmp_path / "labels.csv", "--no-progress")
    assert result.exit_code == 2
    assert "row 2, column 'Age': 'seven' is not a whole number" in result.stderr
    assert "row 4, column 'Purpose': 'yacht' is not one of" in result.stderr
    assert len(pd.read_csv(tmp_path / "labels.csv")) == 3
    assert len(pd.read_csv(tmp_path / "labels.rejects.csv")) == 2
    lenient = invoke(
        "label", tmp_path / "apps.csv", "-o", tmp_path / "l2.csv", "--on-unknown", "unknown", "--no-progress"
    )
    assert lenient.exit_code == 2 and len(pd.read_csv(tmp_path / "l2.csv")) == 4


@pytest.mark.parametrize("command", ["label", "describe"])
def test_bad_input_files(command: str, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    one_line_error(invoke(command, tmp_path / "missing.csv", "-o", out), 2, "missing.csv", "file not found")
    (tmp_path / "empty.csv").write_text("")
    one_line_error(invoke(command, tmp_path / "empty.csv", "-o", out), 2, "empty.csv", "file is empty")
    (tmp_path / "header.csv").write_text(
        "Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose\n"
    )
    one_line_error(invoke(command, tmp_path / "header.csv", "-o", out), 2, "header.csv", "header only")
    (tmp_path / "nocol.csv").write_text("Age,Sex,Job\n30,male,2\n")
    one_line_error(
        invoke(command, tmp_path / "nocol.csv", "-o", out), 2, "nocol.csv", "missing required column"
    )
    (tmp_path / "dup.csv").write_text("Age,age\n30,30\n")
    one_line_error(invoke(command, tmp_path / "dup.csv", "-o", out), 2, "dup.csv", "duplicate columns")
    assert not out.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--llm", "gpt4"], "unknown provider 'gpt4'"),
        (["--llm", "openai"], "name the model"),
        (["--llm", "rules", "--base-url", "http://x"], "does not take --base-url"),
        (["--llm", "rules:rubric-v9"], "knows only 'rubric-v1'"),
        (["--llm", "openai:m", "--base-url", "ftp://x"], "must start with http"),
    ],
)
def test_bad_provider_options(options: list[str], message: str, tmp_path: Path) -> None:
    result = invoke("label", RISK, "-o", tmp_path / "l.csv", *options)
    one_line_error(result, 2, message)
    assert not (tmp_path / "l.csv").exists()


@pytest.mark.parametrize(
    "options", [["--concurrency", "0"], ["--rpm", "0"], ["--timeout", "-1"], ["--on-unknown", "maybe"]]
)
def test_bad_option_values_are_usage_errors(options: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["label", str(RISK), "-o", str(tmp_path / "l.csv"), *options])
    assert result.exit_code == 2 and "Invalid value" in result.output


def test_agreement_command(tmp_path: Path, original_dir: Path) -> None:
    result = invoke("agreement", original_dir / "credit_data_with_targets.csv", "--truth", RISK)
    assert result.exit_code == 0
    assert "0.614" in result.stdout and "0.058" in result.stdout and "0.700" in result.stdout
    assert "joined by row order" in result.stdout
    as_json = invoke("agreement", original_dir / "credit_data_with_targets.csv", "--truth", RISK, "--json")
    assert '"accuracy": 0.614' in as_json.stdout


def test_agreement_bad_input(tmp_path: Path, original_dir: Path) -> None:
    one_line_error(
        invoke("agreement", tmp_path / "none.csv", "--truth", RISK), 2, "none.csv", "file not found"
    )
    one_line_error(invoke("agreement", RISK, "--truth", RISK), 2, "no 'target' column")
    labels = original_dir / "credit_data_with_targets.csv"
    one_line_error(invoke("agreement", labels), 2, "no 'Risk' column to measure against")
    one_line_error(
        invoke("agreement", labels, "--truth", DATA / "german_credit_data.csv"), 2, "no 'Risk' column"
    )
    pd.read_csv(RISK, dtype=str, keep_default_na=False).iloc[:, 1:].head(10).to_csv(
        tmp_path / "t.csv", index=False
    )
    one_line_error(invoke("agreement", labels, "--truth", tmp_path / "t.csv"), 2, "1000 rows here but 10")
    table = pd.read_csv(RISK, dtype=str, keep_default_na=False)
    table.iloc[:, 0] = "7"
    table.to_csv(tmp_path / "dup.csv", index=False)
    out = tmp_path / "l.csv"
    assert invoke("label", RISK, "-o", out, "--no-progress").exit_code == 0
    one_line_error(invoke("agreement", out, "--truth", tmp_path / "dup.csv"), 2, "id '7' appears twice")


def test_agreement_names_rejected_rows_and_exits_2(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    assert invoke("label", RISK, "-o", labels, "--no-progress").exit_code == 0
    table = pd.read_csv(labels, dtype=str, keep_default_na=False)
    table.loc[4, "target"] = "maybe"
    table.loc[6, "Age"] = "300"
    table.to_csv(labels, index=False)
    result = invoke("agreement", labels)
    assert result.exit_code == 2
    assert "applicants compared" in result.stdout and "rejected rows (left out)" in result.stdout
    assert result.stderr.splitlines() == [
        f"preauth: rejected: {labels}, row 5, column 'target': 'maybe' is not one of: good risk, bad risk, or empty",
        f"preauth: rejected: {labels}, row 7, column 'Age': 300 is outside 18–100",
    ]
    assert '"n": 998' in invoke("agreement", labels, "--json").stdout


def test_run_labels_with_an_openai_compatible_server(tmp_path: Path, chat_server: ChatServer) -> None:
    data = tmp_path / "apps.csv"
    pd.read_csv(RISK, dtype=str, keep_default_na=False).head(120).to_csv(data, index=False)
    work = tmp_path / "work"
    args = ["run", "--workdir", work, "--data", data, "--trials", "2", "--llm", "openai:llama3.1"]
    result = invoke(*args, "--base-url", chat_server.url, env={"PREAUTH_OPENAI_API_KEY": "sk-run"})
    assert result.exit_code == 0, result.output
    assert chat_server.count("describe") == 120 and chat_server.count("classify") == 120
    assert chat_server.headers[0]["authorization"] == "Bearer sk-run"
    labels = pd.read_csv(work / "labels.csv", keep_default_na=False)
    assert set(labels["provider"]) == {"openai"} and set(labels["model"]) == {"llama3.1"}
    meta = json.loads((work / "models" / "v1" / "bundle.json").read_text())
    assert meta["metrics"]["measured_against"] == "labels from openai/llama3.1 (prompts v1)"


def test_help_explains() -> None:
    for command in ("describe", "label", "agreement"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Example" in result.output
    assert "bedrock:MODEL_ID" in invoke("label", "--help").output
