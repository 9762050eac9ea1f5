"""The Monitor tab in a real browser: the API's numbers drawn as charts and tables, reachable from
the keyboard and by its address. (Layout on a phone and axe-core: in page_views' list of views.)"""

from __future__ import annotations

from typing import Any

import pandas as pd

from preauth.pipeline import bundled_data


def _decide_some(server: Any, rows: int = 60) -> None:
    frame = pd.read_csv(bundled_data("german_credit_risk.csv"), index_col=0).drop(columns="Risk").head(rows)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    with server.client() as client:
        assert client.post("/v1/decisions/batch", json=records).status_code == 200


def test_the_tab_draws_the_reports_numbers(page: Any, server: Any) -> None:
    _decide_some(server)
    page.goto(server.url + "/#/monitoring")  # by its address: the tab loads on arrival
    page.wait_for_selector("#psi-table tr[data-feature]")
    with server.client() as client:
        report = client.get("/v1/monitoring").json()
    shown = {
        row.get_attribute("data-feature"): row.locator("td").nth(1).inner_text()
        for row in page.locator("#psi-table tr[data-feature]").all()
    }
    expected = {item["feature"]: f"{item['psi']:.3f}" for item in report["inputs"]}
    expected["score"] = f"{report['score']['psi']:.3f}"
    assert shown == expected
    assert page.inner_text("#monitoring-summary h2").endswith(f"{report['decisions']} decisions")

    # the charts: one bar per input and the score, two threshold lines, words for screen readers
    bars = page.locator(".psi-chart g.bar")
    assert bars.count() == len(expected)
    assert page.locator(".psi-chart g.limit").count() == 2
    title = page.text_content("#psi-chart-title") or ""
    assert all(f"{name} {value}" in title for name, value in expected.items())
    assert page.locator(".rates-chart .series.approve circle").count() == len(report["periods"])
    assert "approve" in page.text_content("#rates-chart-title") or ""
    if report["live"] is None:
        assert page.is_visible("#live-none")


def test_the_tab_works_from_the_keyboard(page: Any, server: Any) -> None:
    _decide_some(server, 20)
    page.focus("[role=tab][data-tab=model]")
    page.keyboard.press("ArrowRight")  # the tab after Model
    page.wait_for_selector("#tab-monitoring:not([hidden]) #psi-table")
    page.focus("#monitoring-form select[name=every]")
    page.keyboard.press("ArrowDown")  # week
    assert page.eval_on_selector("#monitoring-form select[name=every]", "s => s.value") == "week"
    with page.expect_response(lambda r: "/v1/monitoring?" in r.url and "every=week" in r.url):
        page.keyboard.press("Tab")  # to Apply
        page.keyboard.press("Enter")
    page.wait_for_function(
        "document.querySelector('.card h2') && document.body.innerText.includes('Decisions per week')"
    )
