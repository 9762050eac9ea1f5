"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions protocol.

It stands in for a cloud LLM (the one thing that cannot run here) and nothing else: the provider
under test talks to it through its real httpx client, over a real socket. It can be told to be
slow (``latency``), to answer the next requests with given HTTP statuses (429 with Retry-After,
500), to send malformed replies, to require an API key, and to answer with any text (``reply``).

``GET /v1/stats`` tells how many chat requests it has had. Used by the tests and by
``bench/label_throughput.py``; run it by hand with
``python tests/labels/openai_server.py --latency 0.2`` to try ``preauth label --llm openai:...``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[str, list[dict[str, str]]], str]


def task_of(messages: list[dict[str, str]]) -> str:
    """describe, classify or repair, from the packaged prompt wording."""
    if messages and messages[-1]["role"] == "user" and "could not be read" in messages[-1]["content"]:
        return "repair"
    system = " ".join(m["content"] for m in messages if m["role"] == "system")
    return "describe" if "summaries of credit" in system else "classify"


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    return float(match.group(1).replace(",", "")) if match else 0.0


def default_reply(task: str, messages: list[dict[str, str]]) -> str:
    """Describe by restating the facts; classify as bad risk when the term is over 24 months."""
    prompt = messages[-1]["content"] if task != "repair" else messages[1]["content"]
    if task == "describe":
        age = _number(r"Age: (\d+)", prompt)
        amount = _number(r"Credit amount: ([\d,]+)", prompt)
        duration = _number(r"Duration: (\d+)", prompt)
        return (
            f"The applicant is {age:.0f} years old and asks for {amount:,.0f} DM over {duration:.0f} months."
        )
    duration = _number(r"over (\d+) months", prompt)
    label = "bad risk" if duration > 24 else "good risk"
    return json.dumps({"label": label, "rationale": f"term of {duration:.0f} months"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the listen backlog: a benchmark opens many connections at once


class ChatServer:
    """Start with :meth:`start`; ``url`` is the base URL to give ``--base-url``."""

    def __init__(self, latency: float = 0.0, api_key: str | None = None) -> None:
        self.latency = latency
        self.api_key = api_key
        self.reply: Reply = default_reply
        self.script: deque[tuple[int, str | None]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.known_models: set[str] | None = None
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- control ---------------------------------------------------------------------------
    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these HTTP statuses (0 = a malformed 200 reply)."""
        with self.lock:
            self.script.extend((status, None) for status in statuses)

    def count(self, task: str | None = None) -> int:
        with self.lock:
            return sum(1 for r in self.requests if task is None or task_of(r["messages"]) == task)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.headers.clear()
            self.script.clear()
        self.reply = default_reply
        self.latency = 0.0
        self.api_key = None
        self.known_models = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> ChatServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out as two writes: without this each reply waits ~40 ms for an ACK
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                if self.path.rstrip("/").endswith("/stats"):
                    return self._send(200, {"requests": server.count()})
                return self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                with server.lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    scripted = server.script.popleft() if server.script else None
                if server.latency:
                    time.sleep(server.latency)
                if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    return self._send(401, {"error": {"message": "Incorrect API key provided"}})
                if server.known_models is not None and body.get("model") not in server.known_models:
                    return self._send(404, {"error": {"message": f"model '{body.get('model')}' not found"}})
                if scripted is not None:
                    status, _ = scripted
                    if status == 0:
                        return self._send_raw(200, b"<html>upstream proxy error</html>", "text/html")
                    headers = {"Retry-After": "0"} if status == 429 else {}
                    return self._send(status, {"error": {"message": f"scripted {status}"}}, headers)
                messages = body.get("messages", [])
                text = server.reply(task_of(messages), messages)
                self._send(
                    200,
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
                    },
                )

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

            def _send_raw(
                self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="chat-server").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0)
    arguments = parser.parse_args()
    running = ChatServer(latency=arguments.latency).start()
    print(f"serving chat completions at {running.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        running.stop()
