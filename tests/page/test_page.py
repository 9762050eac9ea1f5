"""The web page, end to end: a real browser against `preauth serve` with API keys switched on."""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import Any

from page_views import APPLICANT, fill_form

from preauth.applications import FIELDS


def test_page_shell_is_public_and_data_needs_the_key(server: Any) -> None:
    anonymous = server.client(key=None)
    page = anonymous.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/ui/static/page.js", "/ui/static/page.css"):
        assert anonymous.get(asset).status_code == 200, asset
    assert anonymous.get("/ui/static/..%2Fpage.py").status_code == 404
    assert anonymous.get("/ui/static/nothing.js").status_code == 404
    # Nothing is fetched from elsewhere: every src/href is the server's own.
    for url in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert url.startswith("/") and not url.startswith("//"), url
    for path in ("/ui/model", "/ui/report", "/v1/decisions", "/v1/model"):
        assert anonymous.get(path).status_code == 401, path
        assert server.client(key="wrong").get(path).status_code == 401, path
    assert anonymous.post("/ui/batch", files={"file": ("a.csv", b"Age\n1\n")}).status_code == 401
    with server.client() as client:
        assert client.get("/ui/model").status_code == 200
        report = client.get("/ui/report")
        assert report.status_code == 200 and "evaluation report" in report.text
        # A bundle without its report gets one built on first request.
        built = server.models_dir / "v1" / "report.html"
        built.unlink()
        again = client.get("/ui/report")
        assert again.status_code == 200 and "evaluation report" in again.text and built.exists()


def test_form_is_built_from_the_schema(server: Any) -> None:
    html = server.client(key=None).get("/").text
    for f in FIELDS:
        assert f'name="{f.name}"' in html, f.name
        if f.is_category:
            for level in f.categories:
                assert f'<option value="{level}"' in html, (f.name, level)
        elif not f.positive:
            assert f'min="{f.minimum:g}" max="{f.maximum:g}"' in html, f.name


def test_score_an_applicant_and_find_the_decision(page: Any, server: Any, screenshots: Path) -> None:
    fill_form(page, APPLICANT)
    page.click("#score-submit")
    page.wait_for_selector("#score-result .decision-id")
    decision_id = page.inner_text("#score-result .decision-id").strip()
    shown_probability = page.inner_text("#score-result .probability")
    verdict = page.inner_text("#score-result .verdict")
    reasons = page.locator("#score-result ul.reasons li")
    assert 1 <= reasons.count() <= 4
    assert "null" not in page.inner_text("#score-result") and "undefined" not in page.inner_text(
        "#score-result"
    )
    page.screenshot(path=str(screenshots / "score.png"), full_page=True)

    with server.client() as client:
        stored = client.get(f"/v1/decisions/{decision_id}").json()
    assert stored["channel"] == "page"
    assert stored["input"]["Credit amount"] == 9000 and stored["input"]["Purpose"] == "business"
    assert shown_probability == f"{100 * stored['probability']:.1f}%"
    assert ("Decline" in verdict) == (stored["target"] == "bad risk")
    assert math.isclose(
        float(page.inner_text("#score-result .confidence").rstrip("%")),
        100 * stored["confidence"],
        abs_tol=0.06,
    )
    texts = [t.strip() for t in reasons.locator(".text").all_inner_texts()]
    assert texts == [r["text"] for r in stored["reasons"]]

    # It is in the decisions table, its detail opens, and the filters work.
    page.click("button[data-tab=decisions]")
    row = page.locator(f"#decisions-table tr[data-id='{decision_id}']")
    row.wait_for()
    row.click()
    page.wait_for_selector("#decision-detail:not([hidden]) .decision-id")
    assert page.inner_text("#decision-detail .decision-id").strip() == decision_id
    assert "business" in page.inner_text("#decision-detail table.kv")
    assert "null" not in page.inner_text("#decision-detail")
    page.screenshot(path=str(screenshots / "decisions.png"), full_page=True)

    other = "good risk" if stored["target"] == "bad risk" else "bad risk"
    page.select_option("#filters select[name=target]", other)
    page.click("#filters button[type=submit]")
    page.wait_for_function(f"!document.querySelector(\"#decisions-table tr[data-id='{decision_id}']\")")
    page.select_option("#filters select[name=target]", stored["target"])
    page.select_option("#filters select[name=model_version]", stored["model_version"])
    page.click("#filters button[type=submit]")
    row.wait_for()
    # The time filter: from tomorrow there is nothing; from yesterday it is back.
    page.fill("#filters input[name=since]", "2099-01-01T00:00:00")
    page.click("#filters button[type=submit]")
    page.wait_for_selector("#decisions-table td:has-text('No decisions match.')")
    page.fill("#filters input[name=since]", "2000-01-01T00:00:00")
    page.fill("#filters input[name=until]", "2099-01-01T00:00:00")
    page.click("#filters button[type=submit]")
    row.wait_for()


def test_paging_walks_through_every_decision(page: Any, server: Any) -> None:
    with server.client() as client:
        for amount in (1000, 2000, 3000, 4000, 5000):
            body = {**{k: v for k, v in APPLICANT.items()}, "Credit amount": amount}
            assert client.post("/v1/decisions", json=body).status_code == 201
        total = len(client.get("/v1/decisions", params={"limit": 500}).json()["decisions"])
    page.click("button[data-tab=decisions]")
    page.select_option("#filters select[name=limit]", "10")
    page.click("#filters button[type=submit]")
    # The first page of 10 (not the tab's first load of 25, still on screen a moment).
    page.wait_for_function(
        "(n => n > 0 && n <= 10)(document.querySelectorAll('#decisions-table tbody tr[data-id]').length)"
    )
    seen: list[str] = []
    while True:
        ids = page.locator("#decisions-table tbody tr[data-id]").evaluate_all(
            "rows => rows.map(r => r.dataset.id)"
        )
        seen += ids
        if page.is_disabled("#next-page"):
            break
        first = ids[0]
        page.click("#next-page")
        page.wait_for_function(
            f"document.querySelector('#decisions-table tbody tr').dataset.id !== '{first}'"
        )
    assert len(seen) == total == len(set(seen))
    assert total >= 5


def test_an_application_unlike_the_training_data_shows_as_referred(page: Any, server: Any) -> None:
    fill_form(page, {**APPLICANT, "Age": "18", "Credit amount": "1000000"})
    page.click("#score-submit")
    page.wait_for_selector("#score-result .decision-id")
    assert page.inner_text("#score-result .verdict .pill.refer").strip() == "Refer · manual review"
    first = page.locator("#score-result ul.reasons li").first
    assert first.get_attribute("class") == "refer"
    assert "Credit amount 1,000,000 is outside" in first.inner_text()
    assert "undefined" not in page.inner_text("#score-result") and "NaN" not in page.inner_text(
        "#score-result"
    )
    decision_id = page.inner_text("#score-result .decision-id").strip()
    page.click("button[data-tab=decisions]")
    page.locator(f"#decisions-table tr[data-id='{decision_id}'] .pill.refer").wait_for()


def test_out_of_range_values_are_refused_in_the_schemas_words(page: Any, server: Any) -> None:
    fill_form(page, {**APPLICANT, "Age": "150"})
    page.click("#score-submit")
    assert page.inner_text("[data-error-for='Age']").strip() != ""  # the browser's own range check
    assert page.locator("#score-result .decision-id").count() == 0
    # Past the browser's check, the server says what is wrong, under the field.
    page.evaluate("document.querySelector('#field-age').removeAttribute('max')")
    page.click("#score-submit")
    page.wait_for_function("document.querySelector('#notice').textContent.includes('Age')")
    assert "150 is outside 18–100" in page.inner_text("[data-error-for='Age']")
    assert page.locator("#score-result .decision-id").count() == 0


def test_batch_upload_scores_good_rows_and_explains_the_bad_one(
    page: Any, server: Any, tmp_path: Path, screenshots: Path
) -> None:
    upload = tmp_path / "applicants.csv"
    upload.write_text(
        ",Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose\n"
        "0,67,male,2,own,,little,1169,6,radio/TV\n"
        "1,22,female,2,own,little,moderate,5951,48,radio/TV\n"
        "2,49,male,1,own,little,,2096,12,spaceship\n"
        "3,45,male,2,free,little,little,7882,42,furniture/equipment\n",
        encoding="utf-8",
    )
    page.click("button[data-tab=batch]")
    page.set_input_files("#batch-file", str(upload))
    page.click("#batch-submit")
    page.wait_for_selector("#batch-download")
    summary = page.inner_text("#batch-result .summary")
    assert "4 rows" in summary and "3 scored" in summary and "1 rejected" in summary
    reject = page.inner_text("#batch-result table.rejects")
    assert "applicants.csv, row 3, column 'Purpose': 'spaceship' is not one of" in reject
    page.screenshot(path=str(screenshots / "batch.png"), full_page=True)

    with page.expect_download() as info:
        page.click("#batch-download")
    download = info.value
    assert download.suggested_filename == "applicants-results.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert [r["row"] for r in rows] == ["1", "2", "3", "4"]
    assert [r["status"] for r in rows] == ["scored", "scored", "rejected", "scored"]
    assert rows[2]["error"].startswith("applicants.csv, row 3, column 'Purpose'")
    assert rows[2]["Purpose"] == "spaceship" and rows[2]["decision_id"] == ""
    with server.client() as client:
        for row in (rows[0], rows[1], rows[3]):
            stored = client.get(f"/v1/decisions/{row['decision_id']}").json()
            assert stored["channel"] == "page-batch"
            assert math.isclose(float(row["probability_bad_risk"]), stored["probability"], abs_tol=1e-6)
            assert row["target"] == stored["target"]
            assert float(row["Credit amount"]) == stored["input"]["Credit amount"]
            assert row["reasons"] == "; ".join(r["text"] for r in stored["reasons"])


def test_a_file_that_is_not_applications_gets_one_clear_line(page: Any, tmp_path: Path) -> None:
    upload = tmp_path / "notes.csv"
    upload.write_text("name,colour\nann,blue\n", encoding="utf-8")
    page.click("button[data-tab=batch]")
    page.set_input_files("#batch-file", str(upload))
    page.click("#batch-submit")
    page.wait_for_function("document.querySelector('#notice').textContent.length > 0")
    assert "missing required column 'Age'" in page.inner_text("#notice")
    assert page.locator("#batch-download").count() == 0


def test_model_card_and_its_report(page: Any, server: Any, screenshots: Path) -> None:
    page.click("button[data-tab=model]")
    page.wait_for_selector("#model-card .learned-from")
    card = page.inner_text("#model-card")
    assert "v1" in card and "rubric-test" in card
    assert "vs real outcome" in card  # metrics against Risk beside those against the labels
    band = page.inner_text("#model-card .review-band")
    assert band == "±0.05 around the threshold goes to a person; the bundle's own"  # `train`'s default
    page.wait_for_selector("#report-link:not([aria-disabled])")
    page.screenshot(path=str(screenshots / "model.png"), full_page=True)
    with page.context.expect_page() as opened:
        page.click("#report-link")
    report = opened.value
    report.wait_for_load_state()
    assert "evaluation report" in report.title()
    assert report.locator("#fairness").count() == 1


def test_a_wrong_key_is_asked_again(browser: Any, server: Any, api_key: str) -> None:
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.goto(server.url + "/")
        tab.wait_for_selector("#key-dialog[open]")
        tab.fill("#key-input", "not-the-key")
        tab.click("#key-save")
        tab.wait_for_function("document.querySelector('#key-why').textContent.includes('refused')")
        assert tab.is_visible("#key-dialog")
        tab.fill("#key-input", api_key)
        tab.click("#key-save")
        tab.wait_for_function("document.querySelector('#model-badge').textContent === 'model v1'")
        assert tab.evaluate("sessionStorage.getItem('preauth.apiKey')") == api_key
    finally:
        context.close()


def test_without_api_keys_the_page_never_asks(browser: Any, page_models: Path, tmp_path: Path) -> None:
    from serving_support import preauth_serve

    context = browser.new_context()
    try:
        with preauth_serve(page_models, tmp_path, api_keys=None) as url:
            tab = context.new_page()
            tab.goto(url + "/")
            tab.wait_for_function("document.querySelector('#model-badge').textContent === 'model v1'")
            tab.click("#score-submit")  # the schema's example application
            tab.wait_for_selector("#score-result .decision-id")
            assert not tab.is_visible("#key-dialog")
    finally:
        context.close()
