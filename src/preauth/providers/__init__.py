"""Label providers: whatever writes an applicant's description and decides good or bad risk.

A provider answers one :class:`Prompt` at a time with a :class:`Completion`. LLM providers send the
rendered chat messages to a model; the offline ``rules`` provider reads the structured application
that every prompt also carries. Everything around the call (prompts, caching, concurrency, rate
limits, retries, parsing, repair) lives in :mod:`preauth.labels`, so a provider is one small module.

Providers are chosen by a spec string, ``NAME`` or ``NAME:MODEL``: ``rules``,
``bedrock:meta.llama3-70b-instruct-v1:0``, ``openai:llama3.1``. ``NAME`` is the module
``preauth.providers.NAME`` (or an alias below), or a module another package registers under the
``preauth.providers`` entry point group; the module exposes ``create(model, **options)``. Adding a
provider means adding one module; neither the pipeline nor the CLI changes.

Errors: a provider raises :class:`RetryableError` for what waiting may fix (throttling, 5xx,
timeouts, a garbled reply) and :class:`preauth.errors.ProviderError` for what it will not
(bad credentials, unknown model); the engine retries the first and stops the run on the second.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigurationError, ProviderError
from ..prompts import Message, Task

ALIASES: dict[str, str] = {"openai": "openai_compat"}
"""Spec names whose module has another name (``openai`` is not a safe module name to shadow)."""


@dataclass(frozen=True)
class Params:
    """Generation parameters; part of the cache key, so changing one re-asks the model."""

    temperature: float = 0.0
    max_tokens: int = 400

    def as_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}


@dataclass(frozen=True)
class Prompt:
    """What a provider is asked: the rendered messages and the application they were rendered from."""

    task: Task
    messages: tuple[Message, ...]
    application: Mapping[str, Any]
    description: str | None = None


@dataclass(frozen=True)
class Completion:
    """A provider's answer, with token usage when the API reports it."""

    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None


class RetryableError(Exception):
    """A failure that waiting may fix; ``retry_after`` is the server's hint in seconds, if any.

    ``unreachable`` marks a connection that could not be made at all (refused, no route, unknown
    host), as opposed to a server that answered badly or slowly.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, unreachable: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.unreachable = unreachable


@runtime_checkable
class LabelProvider(Protocol):
    """The one interface every provider implements.

    ``name`` and ``model`` are recorded with every label; ``remote`` says whether a call costs
    time and money (the engine caches, throttles and parallelises only remote providers);
    ``prompt_version`` is the provider's own version of its instructions when it does not use the
    packaged prompt templates (``rules`` reports its rubric version), else None.
    """

    name: str
    model: str
    remote: bool
    prompt_version: str | None

    def complete(self, prompt: Prompt, params: Params, timeout: float) -> Completion: ...

    def close(self) -> None: ...


COMMON_OPTIONS = frozenset({"timeout", "api_key"})
"""Options every caller may pass; a provider that has no use for one simply does not get it."""


@dataclass(frozen=True)
class ProviderSpec:
    """A parsed ``NAME[:MODEL]`` spec."""

    name: str
    model: str | None


def parse_spec(spec: str) -> ProviderSpec:
    """Split ``bedrock:meta.llama3-70b-instruct-v1:0`` at the first colon (model ids contain colons)."""
    text = spec.strip()
    if not text:
        raise ConfigurationError("empty provider spec; use e.g. 'rules' or 'openai:MODEL'")
    name, _, model = text.partition(":")
    return ProviderSpec(name.strip().lower(), model.strip() or None)


def available() -> list[str]:
    """Provider names that ship with preauth."""
    return ["rules", "bedrock", "openai"]


def _plugin(name: str) -> Any:
    """A provider from another package, registered under the ``preauth.providers`` entry point group."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="preauth.providers"):
        if entry.name == name:
            return entry.load()
    raise ConfigurationError(f"unknown provider '{name}'; choose one of: {', '.join(available())}")


def get_provider(spec: str, **options: Any) -> LabelProvider:
    """Build the provider a spec names; options the provider does not take are an error.

    Options left as None are dropped, so a CLI can pass every option it has.
    """
    parsed = parse_spec(spec)
    module_name = ALIASES.get(parsed.name, parsed.name)
    if not module_name.isidentifier():
        raise ConfigurationError(f"unknown provider '{parsed.name}'; choose one of: {', '.join(available())}")
    try:
        module: Any = importlib.import_module(f"{__name__}.{module_name}")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{module_name}":
            raise
        module = _plugin(parsed.name)
    create = getattr(module, "create", None)
    if create is None:
        raise ConfigurationError(f"provider '{parsed.name}' has no create() function")
    given = {k: v for k, v in options.items() if v is not None}
    accepted = inspect.signature(create).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = [k for k in given if k not in accepted and k not in COMMON_OPTIONS and not takes_any]
    if unknown:
        names = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise ConfigurationError(f"provider '{parsed.name}' does not take {names}")
    usable = {k: v for k, v in given.items() if k in accepted or takes_any}
    provider: LabelProvider = create(parsed.model, **usable)
    return provider


__all__ = [
    "Completion",
    "LabelProvider",
    "Message",
    "Params",
    "Prompt",
    "ProviderError",
    "RetryableError",
    "Task",
    "available",
    "get_provider",
    "parse_spec",
]
