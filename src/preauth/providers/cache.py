"""The completion cache: every answer a remote provider gave, in SQLite, so no call is paid twice.

The key is a sha256 of provider, model, prompt version, the rendered messages and the generation
parameters: change any of them and the model is asked again; change none and a re-run makes no
calls. Each answer is committed as soon as it arrives (WAL journal), so a run killed at any moment,
even with ``kill -9``, loses at most the calls that were in flight, and the next run resumes from
there.

The schema evolves through the small numbered :data:`MIGRATIONS` below, tracked in SQLite's
``user_version``; never edit a migration that has shipped, add the next one.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from . import Completion, Message, Params

MIGRATIONS: tuple[str, ...] = (
    # 1: one row per answered prompt
    """
    CREATE TABLE completions (
        key TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt_version TEXT NOT NULL,
        task TEXT NOT NULL,
        messages TEXT NOT NULL,
        params TEXT NOT NULL,
        answer TEXT NOT NULL,
        input_tokens INTEGER,
        output_tokens INTEGER,
        created_at REAL NOT NULL
    )
    """,
    # 2: look answers up by who gave them, for `preauth label` summaries and pruning
    "CREATE INDEX completions_by_model ON completions (provider, model, prompt_version)",
)


def cache_key(
    provider: str, model: str, prompt_version: str, messages: Sequence[Message], params: Params
) -> str:
    """The identity of one question to one model."""
    payload = json.dumps(
        [provider, model, prompt_version, [asdict(m) for m in messages], params.as_dict()],
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def migrate(connection: sqlite3.Connection) -> int:
    """Bring a cache database (opened in autocommit mode) up to the latest schema.

    Each migration runs in its own ``BEGIN IMMEDIATE`` transaction with the version bump, so two
    processes opening the same new cache cannot both apply it. Returns the schema version.
    """
    while True:
        connection.execute("BEGIN IMMEDIATE")
        try:
            (version,) = connection.execute("PRAGMA user_version").fetchone()
            if version >= len(MIGRATIONS):
                connection.execute("COMMIT")
                return int(version)
            connection.execute(MIGRATIONS[version])
            connection.execute(f"PRAGMA user_version = {version + 1}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise


class CompletionCache:
    """A thread-safe SQLite store of completions; one connection shared under a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        migrate(self._db)

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute(
                "SELECT answer, input_tokens, output_tokens FROM completions WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else Completion(row[0], row[1], row[2])

    def put(
        self,
        key: str,
        *,
        provider: str,
        model: str,
        prompt_version: str,
        task: str,
        messages: Sequence[Message],
        params: Params,
        completion: Completion,
    ) -> None:
        record = (
            key,
            provider,
            model,
            prompt_version,
            task,
            json.dumps([asdict(m) for m in messages], ensure_ascii=False),
            json.dumps(params.as_dict()),
            completion.text,
            completion.input_tokens,
            completion.output_tokens,
            time.time(),
        )
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO completions VALUES (?,?,?,?,?,?,?,?,?,?,?)", record)

    def count(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM completions").fetchone()
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()
