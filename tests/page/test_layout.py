"""The page fits a phone and a laptop: no view scrolls sideways, and the header is reachable whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from page_views import SIZES, each_view


@pytest.mark.parametrize("size", SIZES)
def test_no_view_scrolls_sideways(page: Any, size: str, tmp_path: Path, screenshots: Path) -> None:
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    too_wide = []
    for view in each_view(page, tmp_path):
        page.screenshot(path=str(screenshots / f"{size}-{view}.png"), full_page=True)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > width:
            too_wide.append(f"{view}: {scroll_width} px")
    assert not too_wide, f"wider than the {width} px screen: {too_wide}"


def test_the_header_wraps_on_a_phone(page: Any) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    for selector in (
        "[role=tab][data-tab=score]",
        "[role=tab][data-tab=model]",
        "#model-badge",
        "#key-button",
    ):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["width"] > 0, selector
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (selector, box)
