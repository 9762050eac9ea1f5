"""The Review tab: a person works through referred decisions with the keyboard, on a phone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from page_views import APPLICANT, open_tab

PHONE = {"width": 390, "height": 844}


def test_a_referred_decision_is_declined_from_the_queue_by_keyboard(
    page: Any, server: Any, page_models: Path
) -> None:
    # `preauth train` writes a review band into the bundle unless told otherwise.
    assert json.loads((page_models / "v1" / "bundle.json").read_text())["review_band"] == 0.05
    with server.client() as client:
        made = client.post("/v1/decisions", json={**APPLICANT, "Credit amount": 1_000_000}).json()
    assert made["decision"] == "refer"
    page.set_viewport_size(PHONE)
    open_tab(page, "review")
    item = page.locator(f"#review-list li[data-id='{made['id']}']")
    item.wait_for()
    assert "outside the range the model was trained on" in item.inner_text()
    assert "1000000" in item.locator("table.kv").inner_text()

    # Both buttons fit the phone's width and a thumb.
    for name in ("approve", "decline"):
        box = item.locator(f"button.{name}").bounding_box()
        assert (
            box is not None
            and box["x"] >= 0
            and box["x"] + box["width"] <= PHONE["width"]
            and box["height"] >= 44
        )
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # "Show more" only when the API says there is more.
    with server.client() as client:
        more = client.get("/v1/reviews", params={"limit": 20}).json()["next_cursor"] is not None
    assert page.is_visible("#review-more") == more

    # No reason: refused on the page, the reason box says so and has the focus.
    item.locator("button.decline").click()
    reason = item.locator("textarea")
    assert item.locator("small.error").inner_text().startswith("Say why")
    assert reason.get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.tagName") == "TEXTAREA"

    # Keyboard only: type the reason, Tab past Approve to Decline, Enter.
    page.keyboard.type("Amount is 50 times the applicant's largest previous loan.")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Decline"
    page.keyboard.press("Enter")
    item.locator(".reviewed").wait_for()
    assert "Declined by a person" in item.inner_text() and "key-2" in item.inner_text()
    assert "declined" in page.inner_text("#review-status")

    with server.client() as client:
        stored = client.get(f"/v1/decisions/{made['id']}").json()
    assert stored["decision"] == "refer"  # the model's decision is kept
    assert stored["review"]["decision"] == "decline" and stored["review"]["reviewer"] == "key-2"
    assert stored["review"]["reason"] == "Amount is 50 times the applicant's largest previous loan."

    # Reviewed decisions are listed with the person's decision; the detail shows it too.
    page.check("#review-filter input[value=done]")
    page.locator(f"#review-list li[data-id='{made['id']}'] .reviewed").wait_for()
    assert page.locator(f"#review-list li[data-id='{made['id']}'] .review-form").count() == 0
    page.goto(f"{server.url}/#/decisions/{made['id']}")
    page.wait_for_selector("#decision-detail:not([hidden]) .reviewed")
    assert "Declined by a person" in page.inner_text("#decision-detail")
