"""The report's figures, as a browser draws them: no legend covers a plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from preauth.report import render_report

OVERLAPS = """() => {
  const box = (e) => e.getBoundingClientRect();
  const meet = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const found = [];
  let legends = 0;
  for (const figure of document.querySelectorAll('svg')) {
    const plots = [...figure.querySelectorAll('g[id^="axes_"] > g[id^="patch_"]:first-child')].map(box);
    for (const legend of figure.querySelectorAll('g[id^="legend_"]')) {
      legends += 1;
      if (plots.some((plot) => meet(box(legend), plot))) found.push(figure.closest('section').id + ' ' + legend.id);
    }
  }
  return {legends, found};
}"""


def test_no_legend_is_drawn_over_a_plot(browser: Any, page_models: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text(render_report(page_models / "v1"), encoding="utf-8")
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        tab = context.new_page()
        tab.goto(report.as_uri())
        checked = tab.evaluate(OVERLAPS)
    finally:
        context.close()
    assert checked["legends"] >= 6  # ROC, PR, calibration, distributions, cost and F1, search
    assert checked["found"] == []
