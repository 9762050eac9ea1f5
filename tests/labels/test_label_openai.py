"""The OpenAI-compatible provider against a live chat-completions server on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from labels_support import first
from openai_server import ChatServer, default_reply

from preauth.applications import Applications
from preauth.errors import ConfigurationError, ProviderError
from preauth.labels import LABEL_COLUMNS, label_applications
from preauth.providers import get_provider

FAST = {"backoff": 0.01, "progress": False}


def provider(server: ChatServer, model: str = "test-model", **options: object):
    return get_provider(f"openai:{model}", base_url=server.url, **options)


def test_labels_every_applicant_through_the_real_protocol(chat_server: ChatServer, few: Applications) -> None:
    frame = label_applications(few, provider(chat_server), concurrency=3, **FAST)
    assert len(frame) == len(few)
    assert list(frame.columns[-len(LABEL_COLUMNS) :]) == list(LABEL_COLUMNS)
    assert "Risk" in frame.columns
    expected = ["bad risk" if d > 24 else "good risk" for d in few.frame["Duration"]]
    assert frame["target"].tolist() == expected
    assert set(frame["provider"]) == {"openai"} and set(frame["model"]) == {"test-model"}
    assert set(frame["prompt_version"]) == {"v1"}
    assert frame["description"].str.startswith("The applicant is").all()
    assert chat_server.count("describe") == len(few) and chat_server.count("classify") == len(few)
    request = chat_server.requests[0]
    assert request["model"] == "test-model" and request["temperature"] == 0.0
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert "male" not in json.dumps(request["messages"])  # sex is never put in a prompt
    run = frame.attrs["label_run"]
    assert run["calls"] == 2 * len(few) and run["input_tokens"] == 50 * 2 * len(few)
    assert run["output_tokens"] == 20 * 2 * len(few) and run["labeled"] == len(few)


def test_retries_429_and_500_then_succeeds(chat_server: ChatServer, few: Applications) -> None:
    chat_server.fail_next(429, 500, 503)
    frame = label_applications(few, provider(chat_server), concurrency=1, **FAST)
    assert (frame["target"] != "").all()
    assert chat_server.count() == 2 * len(few) + 3
    assert frame.attrs["label_run"]["retries"] == 3


def test_malformed_http_reply_is_retried(chat_server: ChatServer, few: Applications) -> None:
    chat_server.fail_next(0, 0)
    frame = label_applications(few, provider(chat_server), concurrency=1, **FAST)
    assert (frame["target"] != "").all()
    assert frame.attrs["label_run"]["retries"] == 2


def test_gives_up_after_retries_and_keeps_the_others(chat_server: ChatServer, few: Applications) -> None:
    chat_server.fail_next(500, 500, 500)  # the first applicant's describe call, tried 3 times
    frame = label_applications(few, provider(chat_server), concurrency=1, max_retries=2, **FAST)
    assert frame["target"].iloc[0] == ""
    assert frame["raw_answer"].iloc[0].startswith("error: HTTP 500")
    assert (frame["target"].iloc[1:] != "").all()
    assert frame.attrs["label_run"]["unlabeled"] == 1


def test_unreadable_answer_is_repaired_once(chat_server: ChatServer, few: Applications) -> None:
    def reply(task: str, messages: list[dict[str, str]]) -> str:
        if task == "classify":
            return "I would rather not say."
        if task == "repair":
            return '```json\n{"label": "Bad Risk", "rationale": "repaired"}\n```'
        return default_reply(task, messages)

    chat_server.reply = reply
    frame = label_applications(few, provider(chat_server), concurrency=2, **FAST)
    assert (frame["target"] == "bad risk").all()
    assert (frame["rationale"] == "repaired").all()
    assert chat_server.count("repair") == len(few)
    repair = next(r for r in chat_server.requests if r["messages"][-1]["content"].startswith("Your answer"))
    assert repair["messages"][-2] == {"role": "assistant", "content": "I would rather not say."}
    assert frame.attrs["label_run"]["repairs"] == len(few)


def test_still_unreadable_after_repair_is_unlabeled_with_raw_answer(
    chat_server: ChatServer, few: Applications
) -> None:
    def reply(task: str, messages: list[dict[str, str]]) -> str:
        if task in ("classify", "repair"):
            return "It is either good risk or bad risk, hard to tell."
        return default_reply(task, messages)

    chat_server.reply = reply
    frame = label_applications(few, provider(chat_server), concurrency=2, **FAST)
    assert (frame["target"] == "").all()
    assert (frame["raw_answer"] == "It is either good risk or bad risk, hard to tell.").all()
    assert frame["description"].str.len().gt(0).all()
    assert frame.attrs["label_run"]["unlabeled"] == len(few)


def test_rerun_makes_no_calls(chat_server: ChatServer, few: Applications, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    first_run = label_applications(few, provider(chat_server), cache_path=cache, **FAST)
    calls = chat_server.count()
    second_run = label_applications(few, provider(chat_server), cache_path=cache, **FAST)
    assert chat_server.count() == calls == 2 * len(few)
    assert second_run["target"].tolist() == first_run["target"].tolist()
    assert second_run.attrs["label_run"]["calls"] == 0
    assert second_run.attrs["label_run"]["cached"] == 2 * len(few)
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        stored = json.dumps(db.execute("SELECT * FROM completions").fetchall())
    assert "secret-key" not in stored


def test_changed_parameters_are_asked_again(
    chat_server: ChatServer, few: Applications, tmp_path: Path
) -> None:
    from preauth.providers import Params

    cache = tmp_path / "cache.sqlite"
    label_applications(few, provider(chat_server), cache_path=cache, **FAST)
    label_applications(few, provider(chat_server), cache_path=cache, params=Params(temperature=0.5), **FAST)
    assert chat_server.count() == 4 * len(few)


def test_rate_limit_spaces_the_calls(chat_server: ChatServer, german: Applications) -> None:
    apps = first(german, 5)
    started = time.monotonic()
    label_applications(apps, provider(chat_server), concurrency=4, rpm=600, **FAST)  # one call per 0.1 s
    elapsed = time.monotonic() - started
    assert chat_server.count() == 10
    assert elapsed >= 0.9  # 10 calls, 9 gaps of 0.1 s; unthrottled this takes a few milliseconds


def test_timeout_is_retried(chat_server: ChatServer, few: Applications) -> None:
    apps = few
    chat_server.latency = 0.3
    frame = label_applications(apps, provider(chat_server), concurrency=6, timeout=0.1, max_retries=1, **FAST)
    assert (frame["raw_answer"].str.contains("no answer from")).all()
    assert chat_server.count() == 2 * len(apps)


def test_api_key_is_sent_and_never_recorded(
    chat_server: ChatServer, few: Applications, tmp_path: Path
) -> None:
    chat_server.api_key = "secret-key"
    frame = label_applications(
        few, provider(chat_server, api_key="secret-key"), cache_path=tmp_path / "c.sqlite", **FAST
    )
    assert (frame["target"] != "").all()
    assert chat_server.headers[0]["authorization"] == "Bearer secret-key"
    assert "secret-key" not in frame.to_csv()
    assert b"secret-key" not in (tmp_path / "c.sqlite").read_bytes()


def test_bad_key_stops_the_run(chat_server: ChatServer, few: Applications) -> None:
    chat_server.api_key = "right"
    with pytest.raises(ProviderError, match=r"refused the credentials \(HTTP 401"):
        label_applications(few, provider(chat_server, api_key="wrong"), concurrency=3, **FAST)
    assert chat_server.count() <= 3  # stopped at once: no retries, no further applicants


def test_unknown_model_stops_the_run(chat_server: ChatServer, few: Applications) -> None:
    chat_server.known_models = {"llama3.1"}
    with pytest.raises(ProviderError, match="model 'nope' .*not found"):
        label_applications(few, provider(chat_server, model="nope"), concurrency=1, **FAST)
    assert chat_server.count() == 1


def test_spec_errors() -> None:
    with pytest.raises(ConfigurationError, match="name the model"):
        get_provider("openai")
    with pytest.raises(ConfigurationError, match="must start with http"):
        get_provider("openai:m", base_url="localhost:11434")
    with pytest.raises(ConfigurationError, match="unknown provider 'gpt'"):
        get_provider("gpt:4")
    with pytest.raises(ConfigurationError, match="does not take --base-url"):
        get_provider("rules", base_url="http://x")
    with pytest.raises(ConfigurationError, match="does not take --aws-profile"):
        get_provider("openai:m", aws_profile="p")


def test_a_server_never_reached_stops_the_run(german: Applications) -> None:
    """A wrong address is not one bad answer: stop, rather than spend every applicant's backoff."""
    apps = first(german, 20)
    dead = get_provider("openai:m", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ProviderError, match="cannot reach http://127.0.0.1:9/v1.*has not answered once"):
        label_applications(apps, dead, concurrency=2, max_retries=1, **FAST)
