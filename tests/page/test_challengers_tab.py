"""The Challengers tab in a real browser: production against its shadow model, on a live `preauth serve`.

A second real model is set as the shadow, sixty applications are decided (and their outcomes
recorded) through the API, and the tab shows the comparison: counts, agreement, a histogram of
the score shift with its words, the decision confusion and the outcome metrics; it is driven by
the keyboard, fits a phone and axe-core finds nothing serious in it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from page_views import SIZES
from serving_support import preauth_serve
from test_accessibility import BLOCKING, axe_violations, describe

from preauth import applications, bundles

MADE_BY_SAVE = {
    "format",
    "format_version",
    "version",
    "created_at",
    "features",
    "feature_types",
    "category_levels",
    "schema",
    "schema_name",
    "schema_fingerprint",
    "threshold",
    "library_versions",
}


@pytest.fixture(scope="module")
def challenged(
    tmp_path_factory: pytest.TempPathFactory, page_models: Path, small_models_dir: Path, bundled_risk: Path
) -> Iterator[str]:
    """v1 (trained by `preauth train`) in production, another real model as v2 in the shadow."""
    work = tmp_path_factory.mktemp("challengers")
    models = work / "models"
    shutil.copytree(page_models, models)
    other = bundles.load_bundle(small_models_dir)
    meta = {k: v for k, v in other.meta.items() if k not in MADE_BY_SAVE}
    bundles.save_bundle(models, other.booster, features=other.features, threshold=other.threshold, meta=meta)
    bundles.promote(models, "v1")
    bundles.promote(models, "v2", bundles.SHADOW)
    frame = applications.read_applications(bundled_risk).frame.head(60)
    names = list(applications.GERMAN.field_names)
    records = [
        {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in row.items()}
        for row in frame[names].astype(object).to_dict("records")
    ]
    with preauth_serve(models, work, api_keys=None) as url:
        with httpx.Client(base_url=url, timeout=30) as http:
            made = http.post("/v1/decisions/batch", json=records).json()["decisions"]
            for decision, risk in zip(made, frame["Risk"], strict=True):
                outcome = "defaulted" if risk == "bad" else "repaid"
                http.post(
                    f"/v1/decisions/{decision['id']}/outcome",
                    json={"outcome": outcome, "known_at": datetime.now(UTC).date().isoformat()},
                )
        yield url


@pytest.fixture
def tab(browser: Any, challenged: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(challenged + "/#/challengers")
    page.wait_for_selector("#compare-summary")
    try:
        yield page
    finally:
        context.close()


def test_the_tab_shows_production_against_its_shadow(tab: Any) -> None:
    assert tab.inner_text("#compare-live") == "Production: v1. Shadow: v2, scoring every request."
    assert tab.inner_text(".compare-n") == "60 (60 decided by v1, 0 by v2)"
    assert tab.inner_text(".compare-agreement").endswith("of 60)")
    bars = tab.locator(".shift-chart rect")
    assert bars.count() == 20
    assert sum(int(n) for n in bars.evaluate_all("bars => bars.map(b => b.dataset.count)")) == 60
    title = tab.text_content(".shift-chart title")
    assert title.startswith("Histogram of the shift pB − pA over 60 decisions")
    assert tab.locator(".shift-chart").get_attribute("role") == "img"
    confusion = tab.locator("#compare-confusion td").all_inner_texts()
    assert sum(int(n) for n in confusion) == 60
    assert tab.inner_text("#compare-outcomes").count("[") == 6  # every figure with its interval
    assert "60 of these decisions have an outcome" in tab.inner_text("#compare-result")


def test_the_keyboard_swaps_the_models_and_a_mistake_is_said(tab: Any) -> None:
    tab.focus("[role=tab][data-tab=monitoring]")
    tab.keyboard.press("ArrowRight")  # the last tab, after Monitor
    assert tab.evaluate("document.activeElement.dataset.tab") == "challengers"
    order: list[str] = []
    while "compare-submit" not in order and len(order) < 40:  # a time input takes a Tab per part
        tab.keyboard.press("Tab")
        now = tab.evaluate("document.activeElement.id || document.activeElement.name")
        if not order or order[-1] != now:
            order.append(now)
    start = order.index("compare-a")
    assert order[start : start + 5] == ["compare-a", "compare-b", "since", "until", "compare-submit"]
    tab.focus("#compare-a")
    tab.select_option("#compare-a", "v2")
    tab.select_option("#compare-b", "v1")
    tab.focus("#compare-submit")
    tab.keyboard.press("Enter")
    tab.wait_for_selector(".compare-n:text('60 (0 decided by v2, 60 by v1)')")
    tab.select_option("#compare-b", "v2")
    tab.focus("#compare-submit")
    tab.keyboard.press("Enter")
    tab.wait_for_selector("#notice:not([hidden])")
    assert "compare two different versions" in tab.inner_text("#notice")


@pytest.mark.parametrize("size", SIZES)
def test_the_comparison_fits_and_is_accessible(tab: Any, size: str, screenshots: Path) -> None:
    width, height = SIZES[size]
    tab.set_viewport_size({"width": width, "height": height})
    tab.wait_for_selector("#compare-summary")
    tab.screenshot(path=str(screenshots / f"{size}-challengers.png"), full_page=True)
    assert tab.evaluate("document.documentElement.scrollWidth") <= width
    found = [describe(v) for v in axe_violations(tab) if v["impact"] in BLOCKING]
    assert not found, "\n".join(found)
