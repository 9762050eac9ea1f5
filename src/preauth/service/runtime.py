"""What every route needs: the served model, the store and its writer, metrics and settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request

from ..coalescing import Coalescer
from ..decisions import Decision
from ..settings import Settings
from ..store import INLINE_ROWS, Claim, DecisionStore, Keep, StoreUnavailable, unavailable
from .observability import Telemetry
from .serving import Decider, ModelSource

MAX_ROWS_PER_COMMIT = 4096


def store_writer(store: DecisionStore) -> Coalescer[Keep, Sequence[Decision]]:
    """Group commit: the decisions of every request waiting at that moment, in one transaction.

    One transaction at a time, so the next one gathers everything that arrived meanwhile. A SQLite
    commit in WAL mode takes tens of microseconds, less than a hand-off to a thread: small batches
    are written right on the event loop. PostgreSQL's commit waits for the server and its disk:
    always in a thread. A request whose decisions the database refuses fails alone.
    """

    def save(keeps: list[Keep]) -> list[Sequence[Decision] | BaseException]:
        try:
            return list(store.save(keeps))
        except Exception as error:
            raise unavailable(error) from error

    inline = INLINE_ROWS if store.engine.dialect.name == "sqlite" else 0
    return Coalescer(
        save,
        weight=lambda keep: len(keep.decisions),
        inline_weight=inline,
        max_weight=MAX_ROWS_PER_COMMIT,
        exclusive=True,
        isolate=lambda error: not isinstance(error, StoreUnavailable),
    )


@dataclass
class Runtime:
    settings: Settings
    source: ModelSource
    store: DecisionStore
    writer: Coalescer[Keep, Sequence[Decision]]
    telemetry: Telemetry
    decider: Decider

    async def keep(self, decisions: Sequence[Decision], claim: Claim | None = None) -> Sequence[Decision]:
        """Store one request's decisions; returns once they are committed.

        With a ``claim`` (an Idempotency-Key), a key already used returns the decisions stored
        under it (marked ``replayed``), or raises :class:`~preauth.errors.InputError` when it was
        used for a different request.
        """
        stored = await self.writer.submit(Keep(decisions, claim))
        for item in stored:
            if not item.replayed:
                self.telemetry.count_decision(item.target, item.model_version)
        return stored


def runtime(request: Request) -> Runtime:
    found = request.app.state.runtime
    assert isinstance(found, Runtime)
    return found


__all__ = ["Runtime", "StoreUnavailable", "runtime"]
