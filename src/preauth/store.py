"""The decision store: every decision the service makes, kept in a SQL database.

SQLite file by default (WAL journal, ``synchronous=NORMAL``: a commit survives a crash of the
process; a power cut may lose the last commits), PostgreSQL when ``PREAUTH_DATABASE_URL`` says so.
The schema evolves through the Alembic migrations in :mod:`preauth.migrations`, applied by
:func:`migrate` when the service starts.

Writes go through :class:`GroupCommit`: one writer thread takes every decision waiting at that
moment, inserts them in one transaction, commits, and only then releases the requests. Each
request is still answered only after its decision is committed, but a hundred concurrent requests
share one commit instead of queueing for a hundred.

An ``Idempotency-Key`` is a unique column: a repeated key inserts nothing (``ON CONFLICT DO
NOTHING``) and the caller gets the decision stored under that key, even when two requests with the
same key race each other.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import queue
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .errors import ConfigurationError, InputError

metadata = sa.MetaData()

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("id", sa.String(36), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("idempotency_key", sa.String(255), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("input", sa.JSON(), nullable=False),
    sa.Column("probability", sa.Float(), nullable=False),
    sa.Column("target", sa.String(16), nullable=False),
    sa.Column("is_fraud", sa.Boolean(), nullable=False),
    sa.Column("confidence", sa.Float(), nullable=False),
    sa.Column("threshold", sa.Float(), nullable=False),
    sa.Column("reasons", sa.JSON(), nullable=False),
    sa.Column("contributions", sa.JSON(), nullable=True),
    sa.UniqueConstraint("id", name="uq_decisions_id"),
    sa.UniqueConstraint("idempotency_key", name="uq_decisions_idempotency_key"),
    sa.Index("ix_decisions_created_at", "created_at"),
    sa.Index("ix_decisions_model_version", "model_version"),
    sa.Index("ix_decisions_target", "target"),
)

_COLUMNS = tuple(c.name for c in decisions.columns if c.name != "seq")
INLINE_ROWS = 256  # LoopCommit writes up to this many rows on the event loop itself
_JSON_COLUMNS = frozenset({"input", "reasons", "contributions"})
_SQLITE_INSERT = (
    f"INSERT INTO decisions ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
    "ON CONFLICT (idempotency_key) DO NOTHING"
)
MAX_PAGE = 500


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def open_engine(url: str) -> Engine:
    """An engine for the store URL; SQLite gets WAL, ``synchronous=NORMAL`` and a busy timeout."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigurationError(f"database_url '{url}' is not a SQLAlchemy URL") from None
    kwargs: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=8, max_overflow=8)
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (sa.exc.NoSuchModuleError, ImportError) as error:
        shown = parsed.render_as_string(hide_password=True)
        raise ConfigurationError(f"database_url '{shown}': {str(error).splitlines()[0]}") from None
    if parsed.get_backend_name() == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (idempotent; safe with several workers starting)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_lock(7262271)"))
            connection.commit()
        try:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
        finally:
            if engine.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_unlock(7262271)"))
                connection.commit()


@dataclass(frozen=True)
class Page:
    """One page of decisions, newest first, and the cursor of the next page (None at the end)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


class DecisionStore:
    """Reads and writes decisions (plain dicts in the API's shape) in one database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_engine(url)
        self._raw: Any = None
        self._raw_lock = threading.Lock()

    def migrate(self) -> None:
        """Also the first connection: an unreachable or refusing database is one clear line."""
        try:
            migrate(self.engine)
        except sa.exc.DBAPIError as error:
            shown = self.engine.url.render_as_string(hide_password=True)
            reason = str(error.orig or error).strip().splitlines()[0]
            raise ConfigurationError(f"decision store {shown}: {reason}") from None

    def close(self) -> None:
        with self._raw_lock:
            if self._raw is not None:
                self._raw.close()
                self._raw = None
        self.engine.dispose()

    # -- writing ---------------------------------------------------------------------------

    def save(self, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert decisions in one transaction; returns what is stored for each, in order.

        For an item whose ``idempotency_key`` was already used (earlier, or earlier in this very
        batch) nothing is inserted and the stored decision is returned in its place.
        """
        if not items:
            return []
        keys = [item["idempotency_key"] for item in items if item.get("idempotency_key")]
        if self.engine.dialect.name == "sqlite":
            self._save_sqlite(items)
        else:
            rows = [{c: item.get(c) for c in _COLUMNS} for item in items]
            for row in rows:
                row["created_at"] = _parse_time(row["created_at"])
            with self.engine.begin() as connection:
                connection.execute(self._insert(bool(keys)), rows)
        if not keys:
            return list(items)
        with self.engine.connect() as connection:
            found = connection.execute(
                sa.select(decisions).where(decisions.c.idempotency_key.in_(set(keys)))
            ).mappings()
            stored = {row["idempotency_key"]: _to_api(row) for row in found}
        out: list[dict[str, Any]] = []
        for item in items:
            key = item.get("idempotency_key")
            if key and key in stored and stored[key]["id"] != item["id"]:
                out.append({**stored[key], "replayed": True})
            else:
                out.append(item)
        return out

    def _save_sqlite(self, items: Sequence[dict[str, Any]]) -> None:
        """SQLite's insert on one raw connection with one prepared statement.

        SQLAlchemy costs ~0.1 ms per transaction, more than SQLite's own insert and commit in WAL
        mode; the values are written in exactly the formats SQLAlchemy reads back (naive UTC
        ``YYYY-MM-DD HH:MM:SS.ffffff`` timestamps, JSON text, 0/1 booleans).
        """
        rows = []
        for item in items:
            row = []
            for column in _COLUMNS:
                value = item.get(column)
                if column == "created_at":
                    value = _parse_time(value).strftime("%Y-%m-%d %H:%M:%S.%f")
                elif column in _JSON_COLUMNS:
                    value = None if value is None and column == "contributions" else _json_dumps(value)
                elif column == "is_fraud":
                    value = 1 if value else 0
                row.append(value)
            rows.append(row)
        with self._raw_lock:
            if self._raw is None:
                self._raw = self.engine.raw_connection()
                # checkpoints happen in checkpoint(), off the request path
                self._raw.cursor().execute("PRAGMA wal_autocheckpoint=0")
            try:
                cursor = self._raw.cursor()
                cursor.executemany(_SQLITE_INSERT, rows)
                self._raw.commit()
            except BaseException:
                self._raw.rollback()
                raise

    def checkpoint(self) -> None:
        """Move SQLite's write-ahead log into the database file (PASSIVE: never blocks writers)."""
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def _insert(self, with_keys: bool) -> Any:
        name = self.engine.dialect.name
        if with_keys and name in ("sqlite", "postgresql"):
            from sqlalchemy.dialects import postgresql, sqlite

            dialect: Any = sqlite if name == "sqlite" else postgresql
            return dialect.insert(decisions).on_conflict_do_nothing(index_elements=["idempotency_key"])
        return decisions.insert()

    # -- reading ---------------------------------------------------------------------------

    def get(self, decision_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as connection:
            row = (
                connection.execute(sa.select(decisions).where(decisions.c.id == decision_id))
                .mappings()
                .first()
            )
        return _to_api(row) if row else None

    def by_idempotency_key(self, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as connection:
            row = (
                connection.execute(sa.select(decisions).where(decisions.c.idempotency_key == key))
                .mappings()
                .first()
            )
        return _to_api(row) if row else None

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(decisions)).scalar_one())

    def find(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        target: str | None = None,
        model_version: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Decisions newest first; ``since`` inclusive, ``until`` exclusive; cursor from a previous page."""
        limit = max(1, min(int(limit), MAX_PAGE))
        query = sa.select(decisions).order_by(decisions.c.seq.desc()).limit(limit + 1)
        if since is not None:
            query = query.where(decisions.c.created_at >= _utc(since))
        if until is not None:
            query = query.where(decisions.c.created_at < _utc(until))
        if target:
            query = query.where(decisions.c.target == target)
        if model_version:
            query = query.where(decisions.c.model_version == model_version)
        if cursor:
            query = query.where(decisions.c.seq < decode_cursor(cursor))
        with self.engine.connect() as connection:
            rows = list(connection.execute(query).mappings())
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(int(rows[-1]["seq"])) if more and rows else None
        return Page([_to_api(row) for row in rows], next_cursor)

    def versions(self) -> list[str]:
        """Model versions that have made stored decisions."""
        with self.engine.connect() as connection:
            found = connection.execute(sa.select(decisions.c.model_version).distinct()).scalars()
            return sorted(str(v) for v in found)


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("s"):
            raise ValueError(text)
        return int(text[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InputError("not a cursor from this API", column="cursor") from None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return _utc(value)
    return _utc(datetime.fromisoformat(str(value)))


def _to_api(row: Any) -> dict[str, Any]:
    """A stored row in the API's decision shape."""
    created = _utc(row["created_at"])
    return {
        "id": row["id"],
        "request_id": row["request_id"],
        "timestamp": created.isoformat(),
        "channel": row["channel"],
        "model_version": row["model_version"],
        "input": row["input"],
        "probability": row["probability"],
        "target": row["target"],
        "is_fraud": bool(row["is_fraud"]),
        "decision": "decline" if row["is_fraud"] else "approve",
        "confidence": row["confidence"],
        "threshold": row["threshold"],
        "reasons": row["reasons"],
        "contributions": row["contributions"],
    }


class StoreUnavailable(Exception):
    """The database refused a write; the decision was not stored and must not be acknowledged."""


class GroupCommit:
    """One writer thread committing every waiting decision in one transaction.

    ``submit`` returns a future that completes only after the transaction holding those decisions
    has committed (or fails with :class:`StoreUnavailable`).
    """

    def __init__(self, store: DecisionStore, max_batch: int = 1024) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[list[dict[str, Any]], Future[list[dict[str, Any]]]] | None]
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="preauth-decision-writer", daemon=True)
        self._thread.start()

    def submit(self, items: Iterable[dict[str, Any]]) -> Future[list[dict[str, Any]]]:
        future: Future[list[dict[str, Any]]] = Future()
        self._queue.put((list(items), future))
        return future

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        running = True
        while running:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    running = False
                    break
                batch.append(more)
            self._commit(batch)

    def _commit(self, batch: list[tuple[list[dict[str, Any]], Future[list[dict[str, Any]]]]]) -> None:
        rows = [row for items, _ in batch for row in items]
        try:
            stored = self.store.save(rows)
        except Exception as error:  # any database failure: nobody in this batch is acknowledged
            failure = StoreUnavailable(f"the decision store refused the write ({type(error).__name__})")
            for _, future in batch:
                future.set_exception(failure)
            return
        start = 0
        for items, future in batch:
            future.set_result(stored[start : start + len(items)])
            start += len(items)


class LoopCommit:
    """Group commit on the event loop's own thread, for SQLite.

    A SQLite commit in WAL mode with ``synchronous=NORMAL`` takes tens of microseconds, less than
    handing the work to a thread and back; so the decisions of every request that reached this
    point in one turn of the event loop are inserted and committed together, right there, and
    their requests resumed. (PostgreSQL's commit waits for the server and its disk: it goes
    through :class:`GroupCommit`'s thread instead.)
    """

    def __init__(self, store: DecisionStore) -> None:
        self.store = store
        self._pending: list[tuple[list[dict[str, Any]], asyncio.Future[list[dict[str, Any]]]]] = []
        self._scheduled = False
        self._in_thread = 0

    async def keep(self, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[dict[str, Any]]] = loop.create_future()
        self._pending.append((list(items), future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        rows = [row for items, _ in batch for row in items]
        if len(rows) > INLINE_ROWS or self._in_thread:
            # A big batch is written beside the loop, not on it; while it is, so are the others,
            # so that the loop never waits for the connection's lock.
            self._in_thread += 1
            done = asyncio.get_running_loop().run_in_executor(None, self.store.save, rows)
            done.add_done_callback(lambda finished: self._settle(batch, finished))
            return
        try:
            stored = self.store.save(rows)
        except Exception as error:
            self._fail(batch, error)
            return
        self._resolve(batch, stored)

    def _settle(
        self, batch: list[tuple[list[dict[str, Any]], asyncio.Future[list[dict[str, Any]]]]], finished: Any
    ) -> None:
        self._in_thread -= 1
        error = finished.exception()
        if error is not None:
            self._fail(batch, error)
        else:
            self._resolve(batch, finished.result())

    @staticmethod
    def _fail(
        batch: list[tuple[list[dict[str, Any]], asyncio.Future[list[dict[str, Any]]]]], error: BaseException
    ) -> None:
        """Nobody in this batch is acknowledged."""
        failure = StoreUnavailable(f"the decision store refused the write ({type(error).__name__})")
        for _, future in batch:
            if not future.done():
                future.set_exception(failure)

    @staticmethod
    def _resolve(
        batch: list[tuple[list[dict[str, Any]], asyncio.Future[list[dict[str, Any]]]]],
        stored: list[dict[str, Any]],
    ) -> None:
        start = 0
        for items, future in batch:
            if not future.done():  # a client that went away cancels its wait, not the commit
                future.set_result(stored[start : start + len(items)])
            start += len(items)
