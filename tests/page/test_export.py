"""The decisions list downloads as CSV: every decision its filters select, on every page, formula-safe."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

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
    assert [r["id"] for r in rows] == [d["id"] for d in expected]
    assert {r["target"] for r in rows} == {target}
    newest = rows[0]
    stored = expected[0]
    assert float(newest["probability_bad_risk"]) == stored["probability"]
    assert newest["reasons"] == "; ".join(r["text"] for r in stored["reasons"])
    assert newest["Credit amount"] == str(stored["input"]["Credit amount"])
    page.wait_for_function("document.querySelector('#export-state').textContent.includes('exported')")
    assert f"{len(expected)} decisions exported" in page.inner_text("#export-state")


FORMULA_CELLS = [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
    ("+1+2", "'+1+2"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"),
    ("-3", "-3"),
    ("-0.25", "-0.25"),
    ("1e-5", "1e-5"),
    ('say "no", twice', '"say ""no"", twice"'),
    (None, ""),
]


def test_export_cells_cannot_run_as_formulas(page: Any) -> None:
    written = page.evaluate("cells => cells.map(csvCell)", [cell for cell, _ in FORMULA_CELLS])
    assert written == [safe for _, safe in FORMULA_CELLS]
