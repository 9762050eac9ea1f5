"""Any OpenAI-compatible chat-completions server: OpenAI, Ollama, vLLM, llama.cpp's server, LM Studio.

``--llm openai:MODEL --base-url URL``. Speaks ``POST {base_url}/chat/completions`` with httpx
(one pooled, thread-safe client), so nothing beyond the protocol is assumed of the server. The
API key comes from settings (``PREAUTH_OPENAI_API_KEY`` or ``OPENAI_API_KEY``); it is sent only as
the ``Authorization`` header and never printed, logged or stored in the cache.

Status codes map onto the engine's two kinds of failure: 408, 409, 425, 429 and 5xx, timeouts,
dropped connections and replies that are not chat-completion JSON are worth retrying; 401/403
(credentials) and 404 (model or URL) stop the run with a message saying what to fix.
"""

from __future__ import annotations

from typing import Any

import httpx

from ..errors import ConfigurationError, ProviderError
from . import Completion, Params, Prompt, RetryableError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = frozenset({408, 409, 425, 429})


class OpenAICompatibleProvider:
    """Chat completions over HTTP."""

    name = "openai"
    remote = True
    prompt_version: str | None = None

    def __init__(
        self,
        model: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            transport=transport,
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=256),
        )

    def complete(self, prompt: Prompt, params: Params, timeout: float) -> Completion:
        body = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in prompt.messages],
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
        }
        try:
            response = self._client.post("/chat/completions", json=body, timeout=timeout)
        except httpx.TimeoutException:
            raise RetryableError(f"no answer from {self.base_url} within {timeout:g} s") from None
        except httpx.ConnectError as error:
            raise RetryableError(f"cannot reach {self.base_url}: {error}", unreachable=True) from None
        except httpx.TransportError as error:
            raise RetryableError(f"cannot reach {self.base_url}: {error}") from None
        self._check_status(response)
        return self._read(response)

    def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        detail = _error_detail(response)
        if status in RETRY_STATUS or status >= 500:
            raise RetryableError(
                f"HTTP {status} from {self.base_url}: {detail}", retry_after=_retry_after(response)
            )
        if status in (401, 403):
            raise ProviderError(
                f"{self.base_url} refused the credentials (HTTP {status}: {detail}); "
                "set PREAUTH_OPENAI_API_KEY (or OPENAI_API_KEY) to a valid key"
            )
        if status == 404:
            raise ProviderError(
                f"model '{self.model}' or the chat-completions endpoint was not found at {self.base_url} "
                f"(HTTP 404: {detail}); check --llm and --base-url"
            )
        raise ProviderError(f"{self.base_url} rejected the request (HTTP {status}: {detail})")

    def _read(self, response: httpx.Response) -> Completion:
        try:
            data = response.json()
            text = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise RetryableError(f"{self.base_url} sent a reply that is not a chat completion") from None
        if not isinstance(text, str):
            raise RetryableError(f"{self.base_url} sent a chat completion without text")
        usage = data.get("usage") or {}
        return Completion(text, _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")))

    def close(self) -> None:
        self._client.close()


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _error_detail(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:200]
    except (ValueError, AttributeError):
        pass
    return response.reason_phrase or "no detail"


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def create(
    model: str | None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    transport: httpx.BaseTransport | None = None,
) -> OpenAICompatibleProvider:
    """``openai:MODEL``; ``base_url`` defaults to OpenAI's own API."""
    if not model:
        raise ConfigurationError("name the model: --llm openai:MODEL (e.g. openai:llama3.1)")
    url = base_url or DEFAULT_BASE_URL
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"--base-url must start with http:// or https://, not '{url}'")
    return OpenAICompatibleProvider(model, base_url=url, api_key=api_key, transport=transport)
