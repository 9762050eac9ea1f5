"""Adding a provider is adding one module: the engine and the labels file need nothing else."""

from __future__ import annotations

import json
import sys
import types

import pytest
from labels_support import first

from preauth.applications import Applications
from preauth.labels import label_applications
from preauth.providers import Completion, LabelProvider, Params, Prompt, get_provider


class Echo:
    """A remote-looking provider that calls everyone with a long term bad risk."""

    name = "echo"
    remote = True
    prompt_version = None

    def __init__(self, model: str, shout: bool = False) -> None:
        self.model = model
        self.shout = shout
        self.prompts: list[Prompt] = []

    def complete(self, prompt: Prompt, params: Params, timeout: float) -> Completion:
        self.prompts.append(prompt)
        if prompt.task == "describe":
            return Completion(
                prompt.messages[-1].content.upper() if self.shout else prompt.messages[-1].content
            )
        label = "bad risk" if prompt.application["Duration"] > 24 else "good risk"
        return Completion(json.dumps({"label": label, "rationale": "echo"}), 3, 4)

    def close(self) -> None:
        return None


def test_a_new_module_is_a_new_provider(monkeypatch: pytest.MonkeyPatch, german: Applications) -> None:
    module = types.ModuleType("preauth.providers.echo")
    module.create = lambda model, *, shout=False: Echo(model or "default", shout)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "preauth.providers.echo", module)
    provider = get_provider("echo:v2", shout=True)
    assert isinstance(provider, LabelProvider)
    apps = first(german, 4)
    frame = label_applications(apps, provider, concurrency=2, progress=False)
    assert set(frame["provider"]) == {"echo"} and set(frame["model"]) == {"v2"}
    assert frame["description"].str.contains("AGE: ").all()
    assert frame["target"].tolist() == ["bad risk" if d > 24 else "good risk" for d in apps.frame["Duration"]]
    assert frame.attrs["label_run"]["output_tokens"] == 4 * len(apps)
    assert {p.task for p in provider.prompts} == {"describe", "classify"}  # type: ignore[attr-defined]
