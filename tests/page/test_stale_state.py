"""Every new action clears the previous result and error: nothing on screen belongs to an older request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from page_views import APPLICANT, UPLOAD, fill_form, open_tab


def test_a_refused_applicant_never_shows_the_previous_decision(page: Any) -> None:
    fill_form(page, APPLICANT)
    page.click("#score-submit")
    page.wait_for_selector("#score-result .decision-id")
    # Refused by the browser's own check: the old decision goes.
    page.fill("#field-age", "150")
    page.click("#score-submit")
    page.wait_for_selector("[data-error-for='Age']:not(:empty)")
    assert page.locator("#score-result .decision-id").count() == 0
    assert page.evaluate("document.activeElement.id") == "field-age"

    fill_form(page, APPLICANT)
    page.click("#score-submit")
    page.wait_for_selector("#score-result .decision-id")
    # Refused by the server: the old decision goes too, and the result says why.
    page.evaluate("document.querySelector('#field-age').removeAttribute('max')")
    page.fill("#field-age", "150")
    page.click("#score-submit")
    page.wait_for_function("document.querySelector('#notice').textContent.includes('Age')")
    assert page.locator("#score-result .decision-id").count() == 0
    assert "No decision" in page.inner_text("#score-result")

    # The next good applicant clears the error and its notice.
    page.fill("#field-age", "40")
    page.click("#score-submit")
    page.wait_for_selector("#score-result .decision-id")
    assert page.is_hidden("#notice")
    assert page.inner_text("[data-error-for='Age']").strip() == ""


def test_an_old_batch_error_never_sits_above_a_new_result(page: Any, tmp_path: Path) -> None:
    bad = tmp_path / "notes.csv"
    bad.write_text("name,colour\nann,blue\n", encoding="utf-8")
    good = tmp_path / "applicants.csv"
    good.write_text(UPLOAD, encoding="utf-8")
    open_tab(page, "batch")
    page.set_input_files("#batch-file", str(bad))
    page.click("#batch-submit")
    page.wait_for_function(
        "document.querySelector('#notice').textContent.includes('missing required column')"
    )

    page.set_input_files("#batch-file", str(good))
    page.click("#batch-submit")
    page.wait_for_selector("#batch-download")
    assert page.is_hidden("#notice")

    # And the other way round: a failed file leaves no results of the previous one.
    page.set_input_files("#batch-file", str(bad))
    page.click("#batch-submit")
    page.wait_for_function(
        "document.querySelector('#notice').textContent.includes('missing required column')"
    )
    assert page.locator("#batch-download").count() == 0
    assert page.inner_text("#batch-result").strip() == ""
