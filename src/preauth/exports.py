"""The decisions export: every stored decision with its review and outcome, as CSV or Parquet.

One query (decisions, left-joined with ``reviews`` and ``outcomes``), filtered like the list
(:func:`preauth.store.filtered`) and in the list's order (newest first), read from the database a
few hundred rows at a time and written a chunk at a time: memory is bounded by the chunk, not by
the store. The columns are :data:`preauth.decisions.EXPORT_COLUMNS`; the API route
(``GET /v1/decisions/export``), ``preauth decisions export`` and the page's export button all go
through :func:`export_chunks`. CSV cells that a spreadsheet would run as a formula are neutralised
(:func:`preauth.files.spreadsheet_safe`); Parquet keeps numbers as numbers and times as UTC times.

A database failing partway is :class:`ExportInterrupted`, one line saying after how many decisions.
A file written to disk is then removed (:func:`export_file`); a streamed answer has already sent
its status, so the connection is cut and what arrived never looks complete: a CSV ends mid-line
(each chunk holds back its last line end until the next chunk, or the end, goes out), a Parquet
file has no footer. A failure before the first chunk is an ordinary error answer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from .decisions import EXPORT_COLUMNS, Decision
from .errors import PreauthError
from .files import atomic_path, spreadsheet_safe
from .outcomes import outcomes
from .reviews import reviews
from .store import DecisionStore, as_utc, decisions, filtered

ExportFormat = Literal["csv", "parquet"]
EXPORT_FORMATS: tuple[str, ...] = ("csv", "parquet")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
CHUNK_ROWS = 2000
"""Rows read from the database and written out at a time (one Parquet row group)."""


@dataclass(frozen=True)
class Filters:
    """The list's filters: ``since`` inclusive, ``until`` exclusive, both UTC."""

    since: datetime | None = None
    until: datetime | None = None
    target: str | None = None
    model_version: str | None = None


def _query(filters: Filters) -> sa.Select[Any]:
    query = (
        sa.select(
            decisions,
            reviews.c.decision.label("review_decision"),
            reviews.c.reviewer.label("review_reviewer"),
            reviews.c.reason.label("review_reason"),
            reviews.c.created_at.label("review_created_at"),
            outcomes.c.outcome.label("outcome_outcome"),
            outcomes.c.known_at.label("outcome_known_at"),
        )
        .outerjoin(reviews, reviews.c.decision_id == decisions.c.id)
        .outerjoin(outcomes, outcomes.c.decision_id == decisions.c.id)
        .order_by(decisions.c.seq.desc())
    )
    return filtered(
        query,
        since=filters.since,
        until=filters.until,
        target=filters.target,
        model_version=filters.model_version,
    )


def _values(row: Any) -> tuple[Any, ...]:
    review = None
    if row["review_decision"] is not None:
        review = (
            row["review_decision"],
            row["review_reviewer"],
            row["review_reason"],
            as_utc(row["review_created_at"]),
        )
    outcome = None
    if row["outcome_outcome"] is not None:
        outcome = (row["outcome_outcome"], as_utc(row["outcome_known_at"]))
    return Decision.from_row(row).export_values(review=review, outcome=outcome)


class ExportInterrupted(PreauthError):
    """The decision store failed partway through an export (see the module docstring)."""

    http_status = 503


def rows(
    store: DecisionStore, filters: Filters, *, chunk: int | None = None
) -> Iterator[list[tuple[Any, ...]]]:
    """The export's rows, ``chunk`` (default :data:`CHUNK_ROWS`) at a time, streamed from the
    database (server-side cursor)."""
    chunk = chunk or CHUNK_ROWS
    sent = 0
    try:
        with store.engine.connect() as connection:
            streamed = connection.execution_options(stream_results=True, yield_per=chunk)
            for part in streamed.execute(_query(filters)).mappings().partitions(chunk):
                yield [_values(row) for row in part]
                sent += len(part)
    except sa.exc.DBAPIError as error:
        reason = str(error.orig or error).strip().splitlines()[0]
        raise ExportInterrupted(
            f"the decisions export stopped after {sent} decisions: the decision store failed "
            f"({type(error.orig or error).__name__}: {reason})"
        ) from None


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return spreadsheet_safe(str(value))


def _csv_chunks(parts: Iterator[list[tuple[Any, ...]]]) -> Iterator[bytes]:
    """The CSV a chunk at a time, each chunk's last line end held back: a cut file ends mid-line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=_CRLF)
    writer.writerow([name for name, _ in EXPORT_COLUMNS])
    held = ""
    for part in parts:
        writer.writerows([_csv_text(v) for v in row] for row in part)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if text:
            yield (held + text.removesuffix(_CRLF)).encode()
            held = _CRLF
    yield (held + buffer.getvalue()).encode()


_CRLF = "\r\n"


class _Drain:
    """A write-only file that hands over what was written since the last :meth:`take`.

    Parquet is written sequentially (footer last), so a row group can leave as soon as it is
    written; ``tell`` counts every byte ever written, as the writer's offsets need.
    """

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def arrow_schema() -> Any:
    import pyarrow as pa

    kinds = {"text": pa.string(), "number": pa.float64(), "time": pa.timestamp("us", tz="UTC")}
    return pa.schema([(name, kinds[kind]) for name, kind in EXPORT_COLUMNS])


def _parquet_chunks(parts: Iterator[list[tuple[Any, ...]]]) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema()
    drain = _Drain()
    sink = pa.PythonFile(drain, mode="w")
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for part in parts:
            columns = list(zip(*part, strict=True)) if part else [() for _ in EXPORT_COLUMNS]
            writer.write_table(
                pa.Table.from_arrays(
                    [pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
                )
            )
            yield drain.take()
    yield drain.take()


def export_chunks(store: DecisionStore, filters: Filters, fmt: ExportFormat) -> Iterator[bytes]:
    """The export file, a chunk of bytes at a time (see the module docstring)."""
    parts = rows(store, filters)
    return _csv_chunks(parts) if fmt == "csv" else _parquet_chunks(parts)


def export_file(store: DecisionStore, filters: Filters, fmt: ExportFormat, path: Path) -> int:
    """Write the export to ``path`` (complete or not at all); the number of decisions written."""
    counted = 0

    def counting() -> Iterator[list[tuple[Any, ...]]]:
        nonlocal counted
        for part in rows(store, filters):
            counted += len(part)
            yield part

    chunks = _csv_chunks(counting()) if fmt == "csv" else _parquet_chunks(counting())
    with atomic_path(path) as tmp, tmp.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
    return counted
