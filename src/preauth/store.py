"""The decision store: every decision the service makes, kept in a SQL database.

SQLite file by default (WAL journal, ``synchronous=NORMAL``: a commit survives a crash of the
process; a power cut may lose the last commits), PostgreSQL when ``PREAUTH_DATABASE_URL`` says so.
The schema evolves through the Alembic migrations in :mod:`preauth.migrations`, applied by
:func:`migrate` when the service starts.

:meth:`DecisionStore.save` commits the decisions of many requests in one transaction (the service
feeds it through :class:`preauth.coalescing.Coalescer`, so a hundred concurrent requests share one
commit); each request is answered only after its decisions are committed.

An ``Idempotency-Key`` is a row of its own table (key, route, fingerprint of the request, the ids
of its decisions), inserted in the same transaction as the decisions with ``ON CONFLICT DO
NOTHING``: a repeated key stores nothing and gets the decisions stored under it, even when two
requests with the same key race each other; the same key with a different request is refused.
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .decisions import ROW_COLUMNS, SHADOW_COLUMNS, Decision, as_decision
from .errors import ConfigurationError, InputError
from .postgres import CONNECT_TIMEOUT

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
    sa.Column("decision", sa.String(16), nullable=True),
    sa.UniqueConstraint("id", name="uq_decisions_id"),
    sa.UniqueConstraint("idempotency_key", name="uq_decisions_idempotency_key"),
    sa.Index("ix_decisions_created_at", "created_at"),
    sa.Index("ix_decisions_model_version", "model_version"),
    sa.Index("ix_decisions_target", "target"),
    sa.Index("ix_decisions_decision", "decision"),  # the review queue (migration 0005)
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("route", sa.String(16), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=True),
    sa.Column("decision_ids", sa.JSON(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

shadow_scores = sa.Table(
    "shadow_scores",
    metadata,
    sa.Column("decision_id", sa.String(36), sa.ForeignKey("decisions.id"), primary_key=True),
    sa.Column("model_version", sa.String(64), primary_key=True),
    sa.Column("probability", sa.Float(), nullable=False),
    sa.Column("threshold", sa.Float(), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Index("ix_shadow_scores_model_version", "model_version"),
)
"""The shadow model's score of a stored decision (``preauth models shadow``), written in the
decision's own transaction: one more prepared insert, and a decision is never stored half-shadowed."""

# A decision's row is made by preauth.decisions; the table holds those columns, its sequence and
# the legacy key column (keys now live in idempotency_keys).
assert {c.name for c in decisions.columns} == {"seq", "idempotency_key", *ROW_COLUMNS}
assert tuple(c.name for c in shadow_scores.columns) == SHADOW_COLUMNS
_KEY_COLUMNS = tuple(c.name for c in idempotency_keys.columns)
INLINE_ROWS = 256
"""Up to this many rows are committed on the event loop itself (SQLite); more go to a thread."""
_SQLITE_INSERT = (
    f"INSERT INTO decisions ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join('?' for _ in ROW_COLUMNS)})"
)
_SQLITE_SHADOW = f"INSERT INTO shadow_scores ({', '.join(SHADOW_COLUMNS)}) VALUES ({', '.join('?' for _ in SHADOW_COLUMNS)})"
_SQLITE_CLAIM = (
    f"INSERT INTO idempotency_keys ({', '.join(_KEY_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _KEY_COLUMNS)}) ON CONFLICT (key) DO NOTHING"
)
MAX_PAGE = 500


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def open_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for the store URL; SQLite gets WAL, ``synchronous=NORMAL`` and a busy timeout.

    ``create=False`` is for commands that only read what a service stored (monitor, export,
    compare, ...): a SQLite file that does not exist is then a mistyped URL, said in one line,
    not a new empty store that reports "0 decisions".
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigurationError(f"database_url '{url}' is not a SQLAlchemy URL") from None
    kwargs: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:" or "mode=memory" in url:
            # Every decision answered would be gone when the process ends, and each of the
            # service's threads would see a database of its own: never acknowledged-but-lost.
            raise ConfigurationError(
                f"database_url '{url}' is an in-memory database: what it stores is lost when the "
                "process ends; name a file, e.g. sqlite:///preauth.db"
            )
        if parsed.database:
            where = Path(parsed.database).expanduser()
            if not create and not where.is_file():
                raise ConfigurationError(
                    f"no decision store at {url}: {where} does not exist (check --database-url or "
                    "PREAUTH_DATABASE_URL; `preauth serve` creates it)"
                )
            where.parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=8, max_overflow=8)
        if parsed.get_backend_name() == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
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
class Claim:
    """An ``Idempotency-Key`` a request claims: the key, the route, and its body's fingerprint.

    The same key on another route, or with another body, is a different request reusing a key:
    refused, never answered with the first request's decisions."""

    key: str
    route: str
    fingerprint: str


@dataclass(frozen=True)
class Keep:
    """One request's decisions, to be committed together, and the key it claims (if any)."""

    decisions: Sequence[Decision]
    claim: Claim | None = None


def key_reused(key: str) -> InputError:
    """The refusal of a key that already stands for a different request."""
    error = InputError(
        f"Idempotency-Key '{key}' was already used for a different request; send a new key for a new request"
    )
    error.column = "Idempotency-Key"  # the field, for the 422 answer; the message already names it
    return error


@dataclass(frozen=True)
class Page:
    """One page of decisions, newest first, and the cursor of the next page (None at the end)."""

    items: list[Decision]
    next_cursor: str | None


class DecisionStore:
    """Reads and writes :class:`~preauth.decisions.Decision` s in one database."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.engine = open_engine(url, create=create)
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

    def save(self, keeps: Sequence[Keep]) -> list[Sequence[Decision] | InputError]:
        """Commit the decisions of several requests in one transaction; per request, what is stored.

        A request that claims an ``Idempotency-Key`` first inserts the key (``ON CONFLICT DO
        NOTHING``); only when the key is new are its decisions inserted, in the same transaction.
        When the key was taken (earlier, or by a racing request in this very batch), nothing of
        that request is inserted and it gets the decisions stored under the key, or an
        :class:`~preauth.errors.InputError` when the key was used for a different request.
        Every decision returned was committed: nothing is acknowledged that is not stored.
        """
        if not keeps:
            return []
        now = datetime.now(UTC)
        if self.engine.dialect.name == "sqlite":
            won = self._save_sqlite(keeps, now)
        else:
            won = self._save_sqlalchemy(keeps, now)
        return [
            keep.decisions if new or keep.claim is None else self._replay_or_error(keep.claim)
            for keep, new in zip(keeps, won, strict=True)
        ]

    def _save_sqlalchemy(self, keeps: Sequence[Keep], now: datetime) -> list[bool]:
        from sqlalchemy.dialects import postgresql, sqlite

        dialect: Any = sqlite if self.engine.dialect.name == "sqlite" else postgresql
        # RETURNING, not rowcount: drivers may report -1 for an INSERT ... ON CONFLICT DO NOTHING
        claim_key = (
            dialect.insert(idempotency_keys)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(idempotency_keys.c.key)
        )
        won: list[bool] = []
        rows: list[dict[str, Any]] = []
        shadows: list[dict[str, Any]] = []
        with self.engine.begin() as connection:
            for keep in keeps:
                new = True
                if keep.claim is not None:
                    claimed = connection.execute(claim_key, _claim_row(keep, now))
                    new = claimed.first() is not None
                if new:
                    kept = [as_decision(item) for item in keep.decisions]
                    rows.extend(item.row() for item in kept)
                    shadows.extend(item.shadow.row(item.id) for item in kept if item.shadow is not None)
                won.append(new)
            if rows:
                connection.execute(decisions.insert(), rows)
            if shadows:
                connection.execute(shadow_scores.insert(), shadows)
        return won

    def _save_sqlite(self, keeps: Sequence[Keep], now: datetime) -> list[bool]:
        """SQLite's inserts on one raw connection with prepared statements.

        SQLAlchemy costs ~0.1 ms per transaction, more than SQLite's own insert and commit in WAL
        mode; the values are written in exactly the formats SQLAlchemy reads back (naive UTC
        ``YYYY-MM-DD HH:MM:SS.ffffff`` timestamps, JSON text, 0/1 booleans).
        """
        with self._raw_lock:
            if self._raw is None:
                self._raw = self.engine.raw_connection()
                # checkpoints happen in checkpoint(), off the request path
                self._raw.cursor().execute("PRAGMA wal_autocheckpoint=0")
            try:
                cursor = self._raw.cursor()
                won: list[bool] = []
                rows: list[tuple[Any, ...]] = []
                shadows: list[tuple[Any, ...]] = []
                for keep in keeps:
                    new = True
                    if keep.claim is not None:
                        claim = _claim_row(keep, now)
                        claim["created_at"] = _sqlite_time(now)
                        claim["decision_ids"] = _json_dumps(claim["decision_ids"])
                        cursor.execute(_SQLITE_CLAIM, [claim[c] for c in _KEY_COLUMNS])
                        new = cursor.rowcount == 1
                    if new:
                        kept = [as_decision(item) for item in keep.decisions]
                        rows.extend(item.row_values(time=_sqlite_time, json=_json_dumps) for item in kept)
                        shadows.extend(
                            item.shadow.row_values(item.id) for item in kept if item.shadow is not None
                        )
                    won.append(new)
                if rows:
                    cursor.executemany(_SQLITE_INSERT, rows)
                if shadows:
                    cursor.executemany(_SQLITE_SHADOW, shadows)
                self._raw.commit()
            except BaseException:
                self._raw.rollback()
                raise
        return won

    def replay(self, claim: Claim) -> list[Decision] | InputError | None:
        """What a key already stands for: its decisions (marked ``replayed``), an error when the key
        was used for a different request, or None when the key is new."""
        with self.engine.connect() as connection:
            row = (
                connection.execute(sa.select(idempotency_keys).where(idempotency_keys.c.key == claim.key))
                .mappings()
                .first()
            )
            if row is None:
                return None
            same_route = row["route"] == claim.route
            # A key stored before fingerprints existed has none: it replays on the key alone.
            same_body = row["fingerprint"] is None or row["fingerprint"] == claim.fingerprint
            if not (same_route and same_body):
                return key_reused(claim.key)
            ids = list(row["decision_ids"])
            found = connection.execute(sa.select(decisions).where(decisions.c.id.in_(ids))).mappings()
            by_id = {r["id"]: r for r in found}
        return [Decision.from_row(by_id[i]).replay() for i in ids if i in by_id]

    def _replay_or_error(self, claim: Claim) -> list[Decision] | InputError:
        found = self.replay(claim)
        if found is None:  # cannot happen: the key was there when the insert skipped it
            raise RuntimeError(f"idempotency key {claim.key!r} vanished")
        return found

    def checkpoint(self) -> None:
        """Move SQLite's write-ahead log into the database file (PASSIVE: never blocks writers)."""
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    # -- reading ---------------------------------------------------------------------------

    def get(self, decision_id: str) -> Decision | None:
        with self.engine.connect() as connection:
            row = (
                connection.execute(sa.select(decisions).where(decisions.c.id == decision_id))
                .mappings()
                .first()
            )
        return Decision.from_row(row) if row else None

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
        query = filtered(query, since=since, until=until, target=target, model_version=model_version)
        if cursor:
            query = query.where(decisions.c.seq < decode_cursor(cursor))
        with self.engine.connect() as connection:
            rows = list(connection.execute(query).mappings())
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(int(rows[-1]["seq"])) if more and rows else None
        return Page([Decision.from_row(row) for row in rows], next_cursor)

    def versions(self) -> list[str]:
        """Model versions that have made stored decisions."""
        with self.engine.connect() as connection:
            found = connection.execute(sa.select(decisions.c.model_version).distinct()).scalars()
            return sorted(str(v) for v in found)


def filtered(
    query: sa.Select[Any],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    target: str | None = None,
    model_version: str | None = None,
) -> sa.Select[Any]:
    """The list's filters on a query of decisions (the list and the export filter the same way)."""
    if since is not None:
        query = query.where(decisions.c.created_at >= as_utc(since))
    if until is not None:
        query = query.where(decisions.c.created_at < as_utc(until))
    if target:
        query = query.where(decisions.c.target == target)
    if model_version:
        query = query.where(decisions.c.model_version == model_version)
    return query


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def could_be_stored_id(text: str) -> bool:
    """Whether a decision id could be in the store: ids are UUIDs (36 characters), and PostgreSQL
    text cannot hold a NUL, so looking one up there fails with a DataError rather than finding
    nothing. Every lookup of an id a person gave (a path, a row of an outcomes file) asks here."""
    return len(text) <= 36 and "\x00" not in text


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("s"):
            raise ValueError(text)
        return int(text[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InputError("not a cursor from this API", column="cursor") from None


def _claim_row(keep: Keep, now: datetime) -> dict[str, Any]:
    assert keep.claim is not None
    return {
        "key": keep.claim.key,
        "route": keep.claim.route,
        "fingerprint": keep.claim.fingerprint,
        "decision_ids": [item["id"] for item in keep.decisions],
        "created_at": now,
    }


def _sqlite_time(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S.%f")


def as_utc(moment: datetime) -> datetime:
    """An aware UTC time: a time without a zone is taken as UTC (SQLite hands those back).

    The one conversion for stored times and for times a person typed (a query's ``since``, an
    outcome's ``known_at``, ``--since``): year 1 at +14:00 is before year 1 in UTC, a time no
    ``datetime`` holds, so that is a :class:`ValueError` saying so, not Python's OverflowError.
    """
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} is outside the years 1-9999 in UTC") from None


class StoreUnavailable(Exception):
    """The database could not take the write; the decision was not stored and is not acknowledged.

    Answered with 503 and ``Retry-After``: the same request may well succeed in a moment."""


_RETRYABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, sqlite3.OperationalError)


def unavailable(error: BaseException) -> BaseException:
    """A failed write as the caller should see it: a database that cannot be reached or is busy is
    :class:`StoreUnavailable` (worth retrying: 503); anything else is that request's own failure."""
    if isinstance(error, _RETRYABLE):
        return StoreUnavailable(f"the decision store refused the write ({type(error).__name__})")
    return error
