"""The decisions list downloads through the API's export: every decision its filters select, on every page."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from page_views import APPLICANT, open_tab


def test_the_filtered_list_downloads_whole(page: Any, server: Any) -> None:
    with server.client() as client:
        for amount in (1111, 2222, 3333):
            assert (
                client.post("/v1/decisions", json={**APPLICANT, "Credit amount": amount}).status_code == 201
            )
        everything = client.get("/v1/decisions", params={"limit": 500}).json()["decisions"]
    target = everything[0]["target"]
    expected = [d for d in everything if d["target"] == target]
    open_tab(page, "decisions")
    page.select_option("#filters select[name=target]", target)
    page.select_option("#filters select[name=limit]", "10")  # the export is not limited to the page shown
    page.click("#filters button[type=submit]")
    page.wait_for_selector("#decisions-table tbody tr[data-id]")
    with page.expect_download() as info:
        page.click("#decisions-export")
    download = info.value
    assert download.suggested_filename.startswith("decisions-") and download.suggested_filename.endswith(
        ".csv"
    )
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert [r["decision_id"] for r in rows] == [d["id"] for d in expected]
    assert {r["target"] for r in rows} == {target}
    newest = rows[0]
    stored = expected[0]
    assert float(newest["probability_bad_risk"]) == stored["probability"]
    assert newest["reasons"] == "; ".join(r["text"] for r in stored["reasons"])
    assert json.loads(newest["input"]) == stored["input"]
    page.wait_for_function("document.querySelector('#export-state').textContent.includes('exported')")

    with page.expect_download() as info:
        page.click("#decisions-export-parquet")
    parquet = info.value
    assert parquet.suggested_filename.endswith(".parquet")
    assert pq.read_table(parquet.path()).column("decision_id").to_pylist() == [d["id"] for d in expected]
