"""What every route needs: the served model, the store and its writer, metrics and settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from ..settings import Settings
from ..store import DecisionStore, GroupCommit, LoopCommit, StoreUnavailable
from .observability import Telemetry
from .serving import Decider, ModelSource


@dataclass
class Runtime:
    settings: Settings
    source: ModelSource
    store: DecisionStore
    writer: GroupCommit | LoopCommit
    telemetry: Telemetry
    decider: Decider

    async def keep(self, decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store decisions; returns once they are committed (or as stored under their idempotency keys)."""
        if isinstance(self.writer, LoopCommit):
            stored = await self.writer.keep(decisions)
        else:
            stored = await asyncio.wrap_future(self.writer.submit(decisions))
        for item in stored:
            if not item.get("replayed"):
                self.telemetry.count_decision(item["target"], item["model_version"])
        return stored


def runtime(request: Request) -> Runtime:
    found = request.app.state.runtime
    assert isinstance(found, Runtime)
    return found


__all__ = ["Runtime", "StoreUnavailable", "runtime"]
