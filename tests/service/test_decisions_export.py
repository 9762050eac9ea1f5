"""The decisions export (API and CLI): the list's decisions, filtered the same way, with reviews and outcomes."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from service_helpers import application, today

from preauth.cli import cli
from preauth.decisions import EXPORT_COLUMNS

FAR = {"Age": 18, "Credit amount": 1_000_000}
FORMULA = '=HYPERLINK("http://x","click")'


def _fill(client) -> dict[str, dict]:
    """Decisions of both risks, one referred and reviewed (with a formula for a reason), one with an outcome."""
    made = [client.post("/v1/decisions", json=application(Duration=d)).json() for d in (6, 24, 48, 60)]
    made += [
        client.post("/v1/decisions", json=application(**{"Credit amount": a})).json() for a in (500, 15000)
    ]
    referred = client.post("/v1/decisions", json=application(**FAR)).json()
    made.append(referred)
    review = {"decision": "decline", "reason": FORMULA}
    assert client.post(f"/v1/decisions/{referred['id']}/review", json=review).status_code == 201
    outcome = {"outcome": "defaulted", "known_at": today()}
    assert client.post(f"/v1/decisions/{made[0]['id']}/outcome", json=outcome).status_code == 201
    return {d["id"]: d for d in made}


def _listed(client, **filters) -> list[dict]:
    return client.get("/v1/decisions", params={"limit": 500, **filters}).json()["decisions"]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_export_is_the_list_with_reviews_and_outcomes(serve, referring_models, database, request):
    overrides = {"models_dir": referring_models}
    if database == "postgresql":
        overrides["database_url"] = request.getfixturevalue("fresh_postgres_url")
    server = serve(**overrides)
    with server.client() as client:
        made = _fill(client)
        referred = next(d for d in made.values() if d["decision"] == "refer")
        risks = {d["target"] for d in made.values()}
        assert risks == {"good risk", "bad risk"}, "the fixture needs decisions of both risks"
        since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        for filters in ({}, {"target": "bad risk", "since": since}, {"model_version": "v9"}):
            expected = _listed(client, **filters)
            answer = client.get("/v1/decisions/export", params={"format": "csv", **filters})
            assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
            assert answer.headers["cache-control"] == "no-store"
            assert 'filename="decisions_' in answer.headers["content-disposition"]
            rows = list(csv.DictReader(io.StringIO(answer.text)))
            assert [r["decision_id"] for r in rows] == [d["id"] for d in expected], filters
            parquet = client.get("/v1/decisions/export", params={"format": "parquet", **filters})
            table = pq.read_table(io.BytesIO(parquet.content))
            assert table.column_names == [name for name, _ in EXPORT_COLUMNS]
            assert table.column("decision_id").to_pylist() == [d["id"] for d in expected]
        header = next(csv.reader(io.StringIO(client.get("/v1/decisions/export").text)))
        assert header == [name for name, _ in EXPORT_COLUMNS]

        rows = {
            r["decision_id"]: r for r in csv.DictReader(io.StringIO(client.get("/v1/decisions/export").text))
        }
        table = pq.read_table(
            io.BytesIO(client.get("/v1/decisions/export", params={"format": "parquet"}).content)
        )
        by_id = {r["decision_id"]: r for r in table.to_pylist()}
        for decision_id, decided in made.items():
            cells, typed = rows[decision_id], by_id[decision_id]
            assert (
                float(cells["probability_bad_risk"])
                == decided["probability"]
                == typed["probability_bad_risk"]
            )
            assert cells["decision"] == decided["decision"] == typed["decision"]
            assert typed["timestamp"] == datetime.fromisoformat(decided["timestamp"])
            assert cells["reasons"] == "; ".join(r["text"] for r in decided["reasons"])
        # The person's decision beside the model's; a formula is text in the CSV, as given in Parquet.
        cells, typed = rows[referred["id"]], by_id[referred["id"]]
        assert (cells["decision"], cells["review_decision"], cells["reviewer"]) == (
            "refer",
            "decline",
            "anonymous",
        )
        assert cells["review_reason"] == "'" + FORMULA and typed["review_reason"] == FORMULA
        assert typed["reviewed_at"].tzinfo is not None
        with_outcome = [r for r in rows.values() if r["outcome"]]
        assert [(r["outcome"], r["outcome_known_at"][:10]) for r in with_outcome] == [("defaulted", today())]
        assert all(not r["review_decision"] for r in rows.values() if r["decision_id"] != referred["id"])

        bad = client.get("/v1/decisions/export", params={"since": "yesterday"})
        assert bad.status_code == 422 and bad.json()["error"]["errors"][0]["field"] == "since"
        assert client.get("/v1/decisions/export", params={"format": "xlsx"}).status_code == 422


def test_the_cli_writes_the_same_export(serve, referring_models, tmp_path: Path):
    server = serve(models_dir=referring_models)
    with server.client() as client:
        made = _fill(client)
        expected = [d["id"] for d in _listed(client, target="good risk")]
    url = server.settings.database_url
    out = tmp_path / "out" / "good.parquet"
    runner = CliRunner()
    done = runner.invoke(
        cli,
        [
            "decisions",
            "export",
            "--format",
            "parquet",
            "--out",
            str(out),
            "--target",
            "good risk",
            "--database-url",
            url,
        ],
    )
    assert done.exit_code == 0, done.output
    assert f"{len(expected)} decisions written to {out}" in done.output
    assert pq.read_table(out).column("decision_id").to_pylist() == expected
    assert [p.name for p in out.parent.iterdir()] == ["good.parquet"]  # nothing half-written left behind

    csv_out = tmp_path / "all.csv"
    done = runner.invoke(cli, ["decisions", "export", "--out", str(csv_out), "--database-url", url])
    assert done.exit_code == 0, done.output
    assert {r["decision_id"] for r in csv.DictReader(csv_out.open(encoding="utf-8"))} == set(made)

    refused = runner.invoke(
        cli, ["decisions", "export", "--out", str(csv_out), "--since", "soon", "--database-url", url]
    )
    assert refused.exit_code == 2 and "--since" in refused.output and "ISO 8601" in refused.output
