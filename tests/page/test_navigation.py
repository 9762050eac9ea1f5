"""Every view has an address, and every decision opens from the keyboard where it can be seen."""

from __future__ import annotations

from typing import Any

import pytest
from page_views import APPLICANT, SIZES, open_tab

TABS = ("score", "decisions", "batch", "model")


def stored_decision(server: Any) -> str:
    with server.client() as client:
        answer = client.post("/v1/decisions", json=APPLICANT)
    assert answer.status_code == 201
    return str(answer.json()["id"])


def hash_of(page: Any) -> str:
    return str(page.evaluate("location.hash"))


@pytest.mark.parametrize("size", SIZES)
def test_a_decision_opens_from_the_keyboard_in_sight_and_closes(page: Any, server: Any, size: str) -> None:
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    decision_id = stored_decision(server)
    open_tab(page, "decisions")
    page.wait_for_selector(f"#decisions-table tr[data-id='{decision_id}']")
    # From the Apply button, Tab reaches the newest decision's link; Enter opens it.
    page.focus("#filters button[type=submit]")
    for _ in range(4):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.matches('a.open-decision')"):
            break
    assert page.evaluate("document.activeElement.closest('tr').dataset.id") == decision_id
    page.keyboard.press("Enter")
    page.wait_for_selector("#decision-detail:not([hidden]) .decision-id")
    assert page.inner_text("#decision-detail .decision-id").strip() == decision_id
    assert hash_of(page) == f"#/decisions/{decision_id}"
    # In sight: its top below the sticky header and inside the window; the focus is on it.
    header = page.locator("header.top").bounding_box()
    detail = page.locator("#decision-detail").bounding_box()
    assert header is not None and detail is not None
    assert header["y"] + header["height"] <= detail["y"] < height, (header, detail)
    assert page.evaluate("document.getElementById('decision-detail').contains(document.activeElement)")
    # Escape (or the Close control) closes it and gives the focus back to its row.
    page.keyboard.press("Escape")
    page.wait_for_selector("#decision-detail", state="hidden")
    assert hash_of(page) == "#/decisions"
    assert page.evaluate("document.activeElement.closest('tr')?.dataset.id") == decision_id
    page.keyboard.press("Enter")
    page.wait_for_selector("#decision-detail:not([hidden]) #detail-close")
    page.click("#detail-close")
    page.wait_for_selector("#decision-detail", state="hidden")
    assert hash_of(page) == "#/decisions"


def test_each_view_has_an_address_that_back_forward_and_reload_keep(page: Any, server: Any) -> None:
    decision_id = stored_decision(server)
    for tab in TABS:
        open_tab(page, tab)
        assert hash_of(page) == f"#/{tab}"
    page.go_back()
    page.wait_for_selector("#tab-batch:not([hidden])")
    assert page.get_attribute("[role=tab][data-tab=batch]", "aria-selected") == "true"
    page.go_back()
    page.wait_for_selector("#tab-decisions:not([hidden])")
    page.go_forward()
    page.wait_for_selector("#tab-batch:not([hidden])")
    page.reload()
    page.wait_for_selector("#tab-batch:not([hidden])")
    assert page.is_hidden("#tab-score")

    # A decision's own address opens it on a fresh load, and back leaves it for the list.
    page.goto(f"{server.url}/#/decisions/{decision_id}")
    page.wait_for_selector("#decision-detail:not([hidden]) .decision-id")
    assert page.inner_text("#decision-detail .decision-id").strip() == decision_id
    page.reload()
    page.wait_for_selector("#decision-detail:not([hidden]) .decision-id")
    open_tab(page, "model")
    page.go_back()
    page.wait_for_selector("#decision-detail:not([hidden]) .decision-id")
    assert page.is_visible("#tab-decisions")

    # An address that names no decision says so, and a malformed one still opens the page.
    page.goto(f"{server.url}/#/decisions/no-such-decision")
    page.wait_for_function("document.querySelector('#notice').textContent.includes('no decision')")
    assert page.is_hidden("#decision-detail")
    page.goto(f"{server.url}/#/decisions/%E0%A4%A")
    page.reload()
    page.wait_for_selector("#tab-decisions:not([hidden])")
    page.wait_for_function("document.querySelector('#notice').textContent.includes('no decision')")
