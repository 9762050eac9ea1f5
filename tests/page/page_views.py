"""Every view of the page a person can reach, in the state worth checking (a result shown, errors shown).

The layout and accessibility tests walk the same views, so a view added here is checked by both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from preauth.applications import FIELDS

SIZES = {"phone": (390, 844), "laptop": (1366, 900)}

APPLICANT = {
    "Age": "23",
    "Sex": "female",
    "Job": "1",
    "Housing": "rent",
    "Saving accounts": "little",
    "Checking account": "little",
    "Credit amount": "9000",
    "Duration": "48",
    "Purpose": "business",
}

UPLOAD = (
    ",Age,Sex,Job,Housing,Saving accounts,Checking account,Credit amount,Duration,Purpose\n"
    "0,67,male,2,own,,little,1169,6,radio/TV\n"
    "1,22,female,2,own,little,moderate,5951,48,radio/TV\n"
    "2,49,male,1,own,little,,2096,12,spaceship\n"
)


def fill_form(page: Any, values: dict[str, str]) -> None:
    for f in FIELDS:
        selector = f"#field-{f.key}"
        if f.is_category:
            page.select_option(selector, values[f.name])
        else:
            page.fill(selector, values[f.name])


def open_tab(page: Any, name: str) -> None:
    page.click(f"[role=tab][data-tab={name}]")
    page.wait_for_selector(f"#tab-{name}:not([hidden])")


def each_view(page: Any, tmp_path: Path) -> Iterator[str]:
    """Bring the page into each view in turn and yield its name while it is on screen."""
    open_tab(page, "score")
    fill_form(page, APPLICANT)
    page.click("#score-submit")
    page.wait_for_selector("#score-result .decision-id")
    yield "score with a decision"

    fill_form(page, {**APPLICANT, "Age": "150", "Duration": "0"})
    page.click("#score-submit")
    page.wait_for_selector("[data-error-for='Age']:not(:empty)")
    yield "score with field errors"

    fill_form(page, {**APPLICANT, "Credit amount": "1000000"})  # far outside training: referred
    page.click("#score-submit")
    page.wait_for_selector("#score-result .pill.refer")

    open_tab(page, "decisions")
    page.wait_for_selector("#decisions-table tbody tr[data-id]")
    yield "decisions"

    page.locator("#decisions-table tbody tr[data-id]").first.click()
    page.wait_for_selector("#decision-detail:not([hidden]) .decision-id")
    yield "a decision's detail"

    open_tab(page, "review")
    page.wait_for_selector("#review-list article .review-form")
    yield "review queue"

    page.locator("#review-list .review-form button.approve").first.click()
    page.wait_for_selector("#review-list .review-form small.error:not(:empty)")
    yield "review with a missing reason"

    upload = tmp_path / "view-upload.csv"
    upload.write_text(UPLOAD, encoding="utf-8")
    open_tab(page, "batch")
    page.set_input_files("#batch-file", str(upload))
    page.click("#batch-submit")
    page.wait_for_selector("#batch-download")
    yield "batch with results and rejects"

    open_tab(page, "model")
    page.wait_for_selector("#report-link:not([aria-disabled])")
    yield "model"

    open_tab(page, "monitoring")
    page.wait_for_selector("#psi-table tr[data-feature]")
    yield "monitoring"
    open_tab(page, "challengers")
    page.wait_for_selector("#compare-empty")
    yield "challengers without a shadow model"

    page.click("#key-button")
    page.wait_for_selector("#key-dialog[open]")
    yield "the API key dialog"
    page.keyboard.press("Escape")
    page.wait_for_selector("#key-dialog", state="hidden")
