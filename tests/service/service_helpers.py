"""Helpers shared by the service tests (a module of its own: `conftest` names collide across areas)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from preauth import applications


def application(**changes: Any) -> dict[str, Any]:
    """The schema's example application with some fields changed."""
    record = applications.example_application()
    record.update(changes)
    return record


def today() -> str:
    """Today's date in UTC: an outcome may not be dated before its decision (nor in the future),
    so a test's outcome for a decision it has just made is known today. Call it after the decision."""
    from datetime import UTC, datetime

    return datetime.now(UTC).date().isoformat()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_async(coroutine: Any) -> Any:
    """``asyncio.run`` in a thread of its own: the browser tests' Playwright keeps an event loop
    running in the main thread, where ``asyncio.run`` refuses to start another."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@contextmanager
def running(app: Any) -> Iterator[str]:
    """A real uvicorn server for ``app`` (in a thread, on a free port): its base URL, stopped after."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    try:
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
