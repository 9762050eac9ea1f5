"""Each decision's contributions drawn as signed bars, with the same numbers in words."""

from __future__ import annotations

from typing import Any

from page_views import APPLICANT, fill_form


def drawn_bars(page: Any, box: str) -> list[dict[str, Any]]:
    return page.locator(f"{box} svg.contrib-chart g.bar").evaluate_all(  # type: ignore[no-any-return]
        """bars => bars.map(g => {
            const rect = g.querySelector('rect').getBBox();
            const axis = g.ownerSVGElement.querySelector('line.axis').getBBox().x;
            return {feature: g.dataset.feature, value: Number(g.dataset.value),
                    left: rect.x, right: rect.x + rect.width, width: rect.width, axis,
                    bad: g.classList.contains('bad'), text: g.querySelector('text.value').textContent};
        })"""
    )


def check_chart(page: Any, box: str, stored: dict[str, Any]) -> None:
    contributions = {k: v for k, v in stored["contributions"].items() if k != "bias"}
    bars = drawn_bars(page, box)
    assert sorted(b["feature"] for b in bars) == sorted(contributions)
    # Largest push first; towards bad risk to the right of zero, towards good risk to the left.
    assert [abs(b["value"]) for b in bars] == sorted((abs(v) for v in contributions.values()), reverse=True)
    biggest = max(b["width"] for b in bars)
    for bar in bars:
        value = contributions[bar["feature"]]
        assert bar["value"] == value
        if value > 0:
            assert bar["bad"] and abs(bar["left"] - bar["axis"]) < 1 and bar["right"] > bar["axis"]
        elif value < 0:
            assert not bar["bad"] and abs(bar["right"] - bar["axis"]) < 1 and bar["left"] < bar["axis"]
        if abs(value) == max(abs(v) for v in contributions.values()):
            assert bar["width"] == biggest
        assert bar["text"].replace("−", "-").lstrip("+") == f"{value:.2f}".replace("-0.00", "0.00")
    # The text alternative names every feature with its value, and the bias.
    label = page.get_attribute(f"{box} svg.contrib-chart", "aria-labelledby")
    assert page.get_attribute(f"{box} svg.contrib-chart", "role") == "img"
    words = page.evaluate(f"document.getElementById('{label}').textContent")
    for feature in contributions:
        assert feature in words
    assert f"bias {stored['contributions']['bias']:+.2f}".replace("-", "−") in words


def test_a_decisions_contributions_are_drawn(page: Any, server: Any) -> None:
    fill_form(page, APPLICANT)
    page.click("#score-submit")
    page.wait_for_selector("#score-result svg.contrib-chart")
    decision_id = page.inner_text("#score-result .decision-id").strip()
    with server.client() as client:
        stored = client.get(f"/v1/decisions/{decision_id}").json()
    assert any(v > 0 for v in stored["contributions"].values())
    check_chart(page, "#score-result", stored)
    # The stored decision's detail draws the same chart.
    page.goto(f"{server.url}/#/decisions/{decision_id}")
    page.wait_for_selector("#decision-detail:not([hidden]) svg.contrib-chart")
    check_chart(page, "#decision-detail", stored)
