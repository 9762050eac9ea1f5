"""Idempotency keys get a table of their own: key, route, request fingerprint, decision ids.

Before, a key was a unique column of ``decisions``: a batch's rows carried ``KEY#batch#i``, so a
single request could replay a batch, two batches under one key stored extra rows, and a key was
never compared with the request it came with. Keys already stored are carried over without a
fingerprint (they replay on the key alone, as before).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BATCH_ROW = re.compile(r"^(?P<key>.*)#batch(?:#(?P<index>\d+))?$")


def upgrade() -> None:
    keys = op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("route", sa.String(16), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("decision_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    connection = op.get_bind()
    old = connection.execute(
        sa.text(
            "SELECT id, idempotency_key, created_at FROM decisions "
            "WHERE idempotency_key IS NOT NULL ORDER BY seq"
        )
    ).all()
    singles: dict[str, dict[str, Any]] = {}
    batches: dict[str, list[tuple[int, str, Any]]] = {}
    for decision_id, key, created in old:
        batch = _BATCH_ROW.match(key)
        if batch is None:
            singles[key] = {"route": "decision", "ids": [decision_id], "created_at": created}
        else:
            index = int(batch["index"] or 0)
            batches.setdefault(batch["key"], []).append((index, decision_id, created))
    rows = [_row(key, s["route"], s["ids"], s["created_at"]) for key, s in singles.items()]
    for key, items in batches.items():
        if key in singles or not key:
            continue  # the same key was used for a single decision first: that one keeps it
        items.sort()
        rows.append(_row(key, "batch", [i for _, i, _ in items], items[0][2]))
    if rows:
        op.bulk_insert(keys, rows)


def _row(key: str, route: str, ids: list[str], created: Any) -> dict[str, Any]:
    if isinstance(created, str):
        created = datetime.fromisoformat(created)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return {"key": key, "route": route, "fingerprint": None, "decision_ids": ids, "created_at": created}


def downgrade() -> None:
    op.drop_table("idempotency_keys")
