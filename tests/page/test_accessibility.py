"""axe-core finds no serious or critical accessibility problem in any view of the page, on a phone or a laptop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from page_views import SIZES, each_view

AXE = Path(__file__).parent / "axe.min.js"
BLOCKING = ("serious", "critical")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations of the page as it is now (injected once per document)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")  # type: ignore[no-any-return]


def describe(violation: dict[str, Any]) -> str:
    targets = [" ".join(node["target"]) for node in violation["nodes"][:3]]
    return f"{violation['id']} ({violation['impact']}, {len(violation['nodes'])} nodes, e.g. {targets}): {violation['help']}"


@pytest.mark.parametrize("size", SIZES)
def test_no_serious_accessibility_problem_in_any_view(page: Any, size: str, tmp_path: Path) -> None:
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    found = []
    for view in each_view(page, tmp_path):
        for violation in axe_violations(page):
            if violation["impact"] in BLOCKING:
                found.append(f"{view}: {describe(violation)}")
    assert not found, "\n".join(found)


def test_tabs_follow_the_wai_aria_tabs_pattern(page: Any) -> None:
    assert page.locator("h1").count() == 1
    tabs = page.locator("[role=tablist] [role=tab]")
    names = tabs.evaluate_all("tabs => tabs.map(t => t.dataset.tab)")
    assert names == ["score", "decisions", "review", "batch", "model", "monitoring", "challengers"]
    for name in names:
        panel = page.locator(f"#{page.get_attribute(f'[role=tab][data-tab={name}]', 'aria-controls')}")
        assert panel.get_attribute("role") == "tabpanel"
        assert panel.get_attribute("aria-labelledby") == page.get_attribute(
            f"[role=tab][data-tab={name}]", "id"
        )
    # One tab stop for the list; the arrow keys (and Home, End) move between tabs and open them.
    page.focus("[role=tab][data-tab=score]")
    for key, expected in (
        ("ArrowRight", "decisions"),
        ("ArrowRight", "review"),
        ("ArrowRight", "batch"),
        ("End", "challengers"),
        ("ArrowRight", "score"),
        ("ArrowLeft", "challengers"),
        ("Home", "score"),
    ):
        page.keyboard.press(key)
        assert page.evaluate("document.activeElement.dataset.tab") == expected, key
        assert page.get_attribute(f"[role=tab][data-tab={expected}]", "aria-selected") == "true"
        assert page.is_visible(f"#tab-{expected}")
        assert tabs.evaluate_all("tabs => tabs.filter(t => t.tabIndex === 0).length") == 1


def test_field_errors_are_tied_to_their_inputs(page: Any) -> None:
    page.fill("#field-age", "150")
    page.click("#score-submit")
    page.wait_for_selector("[data-error-for='Age']:not(:empty)")
    age = page.locator("#field-age")
    assert age.get_attribute("aria-invalid") == "true"
    described = page.evaluate(
        "() => document.querySelector('#field-age').getAttribute('aria-describedby').split(' ')"
        ".map(id => document.getElementById(id).textContent).join(' | ')"
    )
    assert page.inner_text("[data-error-for='Age']").strip() in described
    assert page.locator("[aria-invalid=true]").count() == 1
    page.fill("#field-age", "40")
    page.click("#score-submit")
    page.wait_for_selector("#score-result .decision-id")
    assert page.locator("[aria-invalid=true]").count() == 0
