"""AWS Bedrock through boto3's ``bedrock-runtime`` Converse API.

``--llm bedrock:meta.llama3-70b-instruct-v1:0 --aws-profile NAME --aws-region us-east-1``: the
model the original pipeline used, reached the way it reached it (a named profile, not an IAM
user's keys). Converse gives every Bedrock chat model one request shape, so any model id works.

botocore's own retries are switched off: the labelling engine retries with backoff and jitter for
every provider alike. Throttling and service-side failures are retried; missing credentials,
access denied and unknown model ids stop the run with a message saying what to fix.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError, ProviderError
from . import Completion, Params, Prompt, RetryableError

RETRY_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelNotReadyException",
        "ModelTimeoutException",
        "RequestTimeout",
        "TooManyRequestsException",
    }
)
STOP_CODES = {
    "AccessDeniedException": "access denied; check the profile's IAM policy and that the model is enabled",
    "UnrecognizedClientException": "the credentials are not valid",
    "ExpiredTokenException": "the session has expired; log in again (aws sso login)",
    "ResourceNotFoundException": "model not found; check the model id and region",
    "ValidationException": "the request was rejected; check the model id",
}


class BedrockProvider:
    """Chat through Converse; the client is thread-safe and shared by all workers."""

    name = "bedrock"
    remote = True
    prompt_version: str | None = None

    def __init__(self, model: str, client: Any) -> None:
        self.model = model
        self._client = client

    def request(self, prompt: Prompt, params: Params) -> dict[str, Any]:
        """The Converse request for a prompt: system text apart, user/assistant turns in order."""
        system = [{"text": m.content} for m in prompt.messages if m.role == "system"]
        messages = [
            {"role": m.role, "content": [{"text": m.content}]} for m in prompt.messages if m.role != "system"
        ]
        request: dict[str, Any] = {
            "modelId": self.model,
            "messages": messages,
            "inferenceConfig": {"temperature": params.temperature, "maxTokens": params.max_tokens},
        }
        if system:
            request["system"] = system
        return request

    def complete(self, prompt: Prompt, params: Params, timeout: float) -> Completion:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        try:
            response = self._client.converse(**self.request(prompt, params))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "")
            if code in RETRY_CODES:
                raise RetryableError(f"Bedrock {code}: {message}") from None
            hint = STOP_CODES.get(code, "the request failed")
            raise ProviderError(f"Bedrock model '{self.model}': {code}: {hint} ({message})") from None
        except EndpointConnectionError as error:
            raise RetryableError(f"cannot reach Bedrock: {error}", unreachable=True) from None
        except (ReadTimeoutError, ConnectionError) as error:
            raise RetryableError(f"Bedrock did not answer: {error}") from None
        except BotoCoreError as error:
            raise ProviderError(f"Bedrock: {error}") from None
        try:
            blocks = response["output"]["message"]["content"]
            text = "".join(block.get("text", "") for block in blocks)
        except (KeyError, TypeError):
            raise RetryableError("Bedrock sent a reply without a message") from None
        usage = response.get("usage") or {}
        return Completion(text, usage.get("inputTokens"), usage.get("outputTokens"))

    def close(self) -> None:
        return None


def make_client(profile: str | None, region: str | None, timeout: float) -> Any:
    """A ``bedrock-runtime`` client from a named profile, retries left to the engine."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.Session(profile_name=profile, region_name=region)
    except BotoCoreError as error:  # ProfileNotFound and friends
        raise ProviderError(f"AWS profile: {error}") from None
    if session.region_name is None:
        raise ConfigurationError(
            "no AWS region: pass --aws-region (e.g. us-east-1) or set one in the profile"
        )
    if session.get_credentials() is None:
        raise ProviderError(
            "no AWS credentials found: pass --aws-profile NAME (see `aws configure sso`) or configure the "
            "default profile"
        )
    config = Config(
        read_timeout=timeout,
        connect_timeout=min(timeout, 10),
        retries={"total_max_attempts": 1},
        max_pool_connections=64,
    )
    return session.client("bedrock-runtime", config=config)


def create(
    model: str | None,
    *,
    aws_profile: str | None = None,
    aws_region: str | None = None,
    timeout: float = 60.0,
    client: Any = None,
) -> BedrockProvider:
    """``bedrock:MODEL_ID``; ``client`` lets tests hand in a stubbed bedrock-runtime client."""
    if not model:
        raise ConfigurationError(
            "name the model: --llm bedrock:MODEL_ID (e.g. meta.llama3-70b-instruct-v1:0)"
        )
    return BedrockProvider(
        model, client if client is not None else make_client(aws_profile, aws_region, timeout)
    )
