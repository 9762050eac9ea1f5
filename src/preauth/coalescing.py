"""Doing the work of concurrent requests together, without letting one request fail another.

The service has two places where many small requests are cheaper handled as one: scoring (one call
to the booster pays XGBoost's fixed cost once for every waiting request) and storing (one
transaction commits every waiting decision). Both are the same idea, written once here:

* every item submitted during one turn of the event loop joins one batch;
* a batch is bounded (``max_weight``, e.g. rows), so a turn of the loop never does unbounded work;
  what does not fit waits for the next turn;
* a light batch is done right on the loop (cheaper than a thread hand-off), a heavy one in a
  thread beside it; ``exclusive`` lets one batch run at a time, so the next batch gathers
  everything that arrived meanwhile (group commit);
* when a batch fails, each of its items is tried again alone, so a failure belongs to the one item
  that causes it and never to its neighbours (a failure that is everybody's, such as a database
  that cannot be reached, is not retried item by item: ``isolate`` tells them apart).

The work function takes a list of items and returns one result per item, in order; a result may
be an exception, which is raised to that item's caller alone.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Coalescer(Generic[Item, Result]):
    """Gathers the items submitted in one turn of the event loop and does their work together."""

    def __init__(
        self,
        work: Callable[[list[Item]], Sequence[Result | BaseException]],
        *,
        weight: Callable[[Item], int] = lambda _item: 1,
        inline_weight: int = 32,
        max_weight: int = 1024,
        exclusive: bool = False,
        isolate: Callable[[Exception], bool] = lambda _error: True,
    ) -> None:
        self.work = work
        self.isolate = isolate
        self.weight = weight
        self.inline_weight = inline_weight
        self.max_weight = max_weight
        self.exclusive = exclusive
        self._pending: collections.deque[tuple[Item, asyncio.Future[Result]]] = collections.deque()
        self._scheduled = False
        self._running = 0

    async def submit(self, item: Item) -> Result:
        """Do the work for one item (with whatever else is waiting); its result or its own error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((item, future))
        self._schedule(loop)
        return await future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self.exclusive and self._running:
            return  # the running batch flushes again when it ends
        loop = asyncio.get_running_loop()
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        total = 0
        while self._pending:
            item, future = self._pending[0]
            if future.done():  # its caller went away before the work began
                self._pending.popleft()
                continue
            size = self.weight(item)
            if batch and total + size > self.max_weight:
                break
            batch.append(self._pending.popleft())
            total += size
        if self._pending:
            self._schedule(loop)  # the rest in the next turn of the loop
        if not batch:
            return
        items = [item for item, _ in batch]
        if total <= self.inline_weight:
            self._settle(batch, self.isolated(items))
            return
        self._running += 1
        running = loop.run_in_executor(None, self.isolated, items)
        running.add_done_callback(lambda done: self._finished(batch, done, loop))

    def _finished(
        self,
        batch: list[tuple[Item, asyncio.Future[Result]]],
        done: asyncio.Future[list[Result | BaseException]],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._running -= 1
        error = done.exception()
        self._settle(batch, [error] * len(batch) if error is not None else done.result())
        if self._pending:
            self._schedule(loop)

    def isolated(self, items: list[Item]) -> list[Result | BaseException]:
        """The work for a batch; when it fails as a whole, each item is tried alone (unless
        ``isolate`` says the failure is everybody's, like a database that cannot be reached)."""
        try:
            results = list(self.work(items))
        except Exception as error:
            if len(items) == 1 or not self.isolate(error):
                return [error] * len(items)
            results = []
            for item in items:
                try:
                    results.extend(self.work([item]))
                except Exception as alone:
                    results.append(alone)
        if len(results) != len(items):
            raise RuntimeError(f"work returned {len(results)} results for {len(items)} items")
        return results

    @staticmethod
    def _settle(
        batch: list[tuple[Item, asyncio.Future[Result]]], results: Sequence[Result | BaseException]
    ) -> None:
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # a client that went away cancels its wait, not the work
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
