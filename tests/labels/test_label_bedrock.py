"""The Bedrock provider on a real bedrock-runtime client, driven by botocore's Stubber."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from labels_support import first

from preauth.applications import Applications
from preauth.errors import ConfigurationError, ProviderError
from preauth.labels import label_applications
from preauth.prompts import render
from preauth.providers import get_provider

MODEL = "meta.llama3-70b-instruct-v1:0"


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )


def answer(text: str, tokens: tuple[int, int] = (120, 30)) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": tokens[0], "outputTokens": tokens[1], "totalTokens": sum(tokens)},
        "metrics": {"latencyMs": 850},
    }


def expected_request(
    application: dict[str, Any], task: str, description: str | None = None
) -> dict[str, Any]:
    messages = render(task, application, description=description)  # type: ignore[arg-type]
    return {
        "modelId": MODEL,
        "system": [{"text": messages[0].content}],
        "messages": [{"role": "user", "content": [{"text": messages[1].content}]}],
        "inferenceConfig": {"temperature": 0.0, "maxTokens": 400},
    }


def test_converse_request_shape_and_answer(client: Any, german: Applications) -> None:
    apps = first(german, 1)
    application = apps.frame.iloc[0].to_dict()
    description = "A 67-year-old skilled worker asks for 1,169 DM over 6 months."
    with Stubber(client) as stub:
        stub.add_response("converse", answer(description), expected_request(application, "describe"))
        stub.add_response(
            "converse",
            answer('{"label": "good risk", "rationale": "short term, small amount"}'),
            expected_request(application, "classify", description),
        )
        frame = label_applications(apps, get_provider(f"bedrock:{MODEL}", client=client), progress=False)
        stub.assert_no_pending_responses()
    row = frame.iloc[0]
    assert (row["target"], row["rationale"]) == ("good risk", "short term, small amount")
    assert (row["provider"], row["model"], row["description"]) == ("bedrock", MODEL, description)
    run = frame.attrs["label_run"]
    assert (run["input_tokens"], run["output_tokens"], run["calls"]) == (240, 60, 2)


def test_throttling_then_success(client: Any, german: Applications) -> None:
    apps = first(german, 1)
    with Stubber(client) as stub:
        stub.add_client_error("converse", "ThrottlingException", "Too many requests", 429)
        stub.add_client_error("converse", "ServiceUnavailableException", "Try again", 503)
        stub.add_response(
            "converse",
            answer("A description."),
            {"modelId": MODEL, "messages": ANY, "system": ANY, "inferenceConfig": ANY},
        )
        stub.add_response("converse", answer("Bad risk. Long term."))
        frame = label_applications(
            apps, get_provider(f"bedrock:{MODEL}", client=client), backoff=0.01, progress=False
        )
        stub.assert_no_pending_responses()
    assert frame["target"].iloc[0] == "bad risk"
    assert frame.attrs["label_run"]["retries"] == 2


def test_access_denied_stops(client: Any, german: Applications) -> None:
    apps = first(german, 3)
    with Stubber(client) as stub:
        stub.add_client_error(
            "converse",
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
            403,
        )
        with pytest.raises(ProviderError, match="AccessDeniedException: access denied"):
            label_applications(
                apps, get_provider(f"bedrock:{MODEL}", client=client), backoff=0.01, progress=False
            )
        stub.assert_no_pending_responses()


def test_unknown_model_stops(client: Any, german: Applications) -> None:
    with Stubber(client) as stub:
        stub.add_client_error("converse", "ResourceNotFoundException", "Model not found", 404)
        with pytest.raises(ProviderError, match="model not found"):
            label_applications(
                first(german, 1), get_provider("bedrock:no.such-model", client=client), progress=False
            )


def test_missing_profile_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    config.write_text("[profile bank]\nregion = eu-central-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ProviderError, match="nosuch"):
        get_provider(f"bedrock:{MODEL}", aws_profile="nosuch", aws_region="us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ProviderError, match="no AWS credentials"):
        get_provider(f"bedrock:{MODEL}", aws_profile="bank")
    with pytest.raises(ConfigurationError, match="name the model"):
        get_provider("bedrock")


def test_profile_and_region_reach_the_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config").write_text("[profile bank]\nregion = eu-central-1\n")
    (tmp_path / "credentials").write_text("[bank]\naws_access_key_id = AKID\naws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    provider = get_provider(f"bedrock:{MODEL}", aws_profile="bank")
    assert provider._client.meta.region_name == "eu-central-1"  # type: ignore[attr-defined]
    provider = get_provider(f"bedrock:{MODEL}", aws_profile="bank", aws_region="us-west-2")
    assert provider._client.meta.region_name == "us-west-2"  # type: ignore[attr-defined]
    assert provider._client.meta.config.retries["total_max_attempts"] == 1  # type: ignore[attr-defined]
