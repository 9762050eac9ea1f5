"""A decision store failing during an export: one log line, and a file that never looks complete.

PostgreSQL's own failure, not a stand-in: the export's database session is ended from another
session (``pg_terminate_backend``) once its first chunk is read, so the next fetch fails.
"""

from __future__ import annotations

import io
import itertools
import logging
import sqlite3
import time
import uuid
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from service_helpers import application

from preauth import exports
from preauth.cli import cli

CHUNK = 10
DECISIONS = 25  # three chunks: the store fails after the first


def _end_session(application_name: str) -> None:
    """End the export's PostgreSQL session and wait until it is gone. It is the one of this test's
    server (its application name) holding a transaction open: the export's server-side cursor."""
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND state = 'idle in transaction'",
            (application_name,),
        ).fetchall()
        assert ended == [(True,)], "the export's session was not found"
        deadline = time.monotonic() + 10
        while admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = 'idle in transaction'",
            (application_name,),
        ).fetchone() != (0,):
            assert time.monotonic() < deadline
            time.sleep(0.05)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_store_failing_partway_cuts_the_export_where_it_shows(
    serve, referring_models, fmt, request, monkeypatch, caplog
):
    name = f"preauth-export-cut-{uuid.uuid4().hex[:8]}"
    url = f"{request.getfixturevalue('fresh_postgres_url')}&application_name={name}"
    server = serve(models_dir=referring_models, database_url=url)
    with server.client() as client:
        made = client.post(
            "/v1/decisions/batch", json=[application(Duration=6 + d) for d in range(DECISIONS)]
        )
        assert made.status_code == 200 and len(made.json()["decisions"]) == DECISIONS

    monkeypatch.setattr(exports, "CHUNK_ROWS", CHUNK)
    read = itertools.count(1)
    real = exports._values

    def values(row):
        if next(read) == CHUNK:  # the first chunk is read: the store goes away before the second
            _end_session(name)
        return real(row)

    monkeypatch.setattr(exports, "_values", values)
    received = b""
    with (
        caplog.at_level(logging.ERROR, logger="preauth.service"),
        server.client() as client,
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("GET", "/v1/decisions/export", params={"format": fmt}) as answer,
    ):
        assert answer.status_code == 200
        for piece in answer.iter_bytes():
            received += piece

    said = [r for r in caplog.records if r.name == "preauth.service"]
    assert len(said) == 1 and said[0].exc_info is None, [r.getMessage() for r in said]
    message = said[0].getMessage()
    assert message.startswith("GET /v1/decisions/export (request id ") and " cut short: " in message
    assert f"the decisions export stopped after {CHUNK} decisions: the decision store failed (" in message
    assert "\n" not in message

    if fmt == "csv":
        lines = received.split(b"\r\n")
        assert lines[0].startswith(b"decision_id,") and len(lines) == 1 + CHUNK
        assert not received.endswith(b"\n")  # mid-line: never a file that looks complete
    else:
        assert received.startswith(b"PAR1") and not received.endswith(b"PAR1")  # no footer
        with pytest.raises(pa.ArrowInvalid):
            pq.read_table(io.BytesIO(received))


def test_a_complete_csv_export_ends_with_its_line_end(serve, referring_models, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK_ROWS", CHUNK)
    server = serve(models_dir=referring_models)
    with server.client() as client:
        made = client.post(
            "/v1/decisions/batch", json=[application(Duration=6 + d) for d in range(DECISIONS)]
        )
        assert made.status_code == 200
        body = client.get("/v1/decisions/export").content
    assert body.endswith(b"\r\n") and not body.endswith(b"\r\n\r\n")
    assert len(body.split(b"\r\n")) == 1 + DECISIONS + 1  # header, 25 rows over 3 chunks, the end


def test_a_store_failing_from_the_start_is_an_error_answer_and_no_file(
    serve, referring_models, tmp_path: Path
):
    database = tmp_path / "decisions.db"
    server = serve(models_dir=referring_models, database_url=f"sqlite:///{database}")
    with server.client() as client:
        assert client.post("/v1/decisions", json=application()).status_code == 201
        with sqlite3.connect(database) as broken:
            broken.execute("DROP TABLE reviews")
        answer = client.get("/v1/decisions/export")
    assert answer.status_code == 503
    expected = (
        "the decisions export stopped after 0 decisions: the decision store failed "
        "(OperationalError: no such table: reviews)"
    )
    assert answer.json()["error"]["message"] == expected

    out = tmp_path / "export.csv"
    done = CliRunner().invoke(
        cli, ["decisions", "export", "--out", str(out), "--database-url", f"sqlite:///{database}"]
    )
    assert done.exit_code == 1
    assert done.stderr.splitlines() == [f"preauth: error: {expected}"]
    assert list(tmp_path.glob("*export*")) == []  # no file, no partial file
