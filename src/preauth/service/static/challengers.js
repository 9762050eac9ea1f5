// The Challengers tab: the production model against its shadow model, on the decisions both scored
// (GET /v1/models/compare). It registers its loader with page.js (which lists it in TABS, as every
// tab) and uses its helpers;
// page.html loads it after page.js (both deferred, so in order, before DOMContentLoaded).
"use strict";

(() => {
  const signedNum = (v, d = 3) => (v === null || v === undefined ? "–"
    : (v > 0 ? "+" : v < 0 ? "−" : "") + Math.abs(v).toFixed(d));

  function withInterval(value, range, format) {
    if (value === null || value === undefined) return "–";
    return format(value) + (range ? ` [${format(range[0])} to ${format(range[1])}]` : "");
  }

  function compareParams() {
    const form = $("#compare-form");
    const params = new URLSearchParams();
    for (const name of ["a", "b"]) {
      const value = form.elements[name].value;
      if (value) params.set(name, value);
    }
    for (const name of ["since", "until"]) {
      const value = form.elements[name].value;
      if (value) params.set(name, new Date(value).toISOString());
    }
    return params;
  }

  function fillVersions(result) {
    // Every version with scores in the store; the compared ones chosen (the live pair at first).
    const versions = Array.from(new Set([...(result.versions || []), result.a, result.b].filter(Boolean)));
    for (const [id, chosen] of [["#compare-a", result.a], ["#compare-b", result.b]]) {
      const select = $(id);
      select.replaceChildren(...versions.map((v) => el("option", { value: v }, v)));
      if (!chosen) select.prepend(el("option", { value: "" }, "none"));
      select.value = chosen || "";
    }
  }

  function liveLine(live) {
    if (!live) return "";
    if (!live.shadow) return `Production: ${live.production}. No shadow model.`;
    if (!live.shadow_loaded) return `Production: ${live.production}. Shadow ${live.shadow} cannot be loaded (${live.shadow_error || "unknown error"}): no shadow scores until it is fixed.`;
    return `Production: ${live.production}. Shadow: ${live.shadow}, scoring every request.`;
  }

  async function loadComparison() {
    // The versions picked (none at first: the server compares production with the shadow).
    const out = $("#compare-result");
    out.replaceChildren(el("p", { class: "hint" }, "Comparing…"));
    $("#compare-submit").disabled = true;
    try {
      const result = await apiJson("/v1/models/compare?" + compareParams().toString());
      fillVersions(result);
      $("#compare-live").textContent = liveLine(result.live);
      renderComparison(out, result);
    } catch (error) {
      if (error.status === 401) afterKey = loadComparison;
      out.replaceChildren(el("p", { class: "hint" }, "No comparison: " + error.message));
      notify(error.message);
    } finally {
      $("#compare-submit").disabled = false;
    }
  }

  function renderComparison(out, r) {
    if (!r.n) {
      fill(out, el("p", { class: "hint", id: "compare-empty" }, r.message || "Nothing to compare."));
      return;
    }
    const q = r.score_shift.quantiles;
    fill(out,
      el("h3", {}, `${r.a} (A) against ${r.b} (B)`),
      el("dl", { class: "stats", id: "compare-summary" },
        el("dt", {}, "Decisions compared"),
        el("dd", { class: "compare-n" }, `${r.n} (${r.a_in_production} decided by ${r.a}, ${r.b_in_production} by ${r.b})`),
        el("dt", {}, "Same decision"),
        el("dd", { class: "compare-agreement" }, withInterval(r.agreement.rate, r.agreement.interval, pct) + ` (${r.agreement.same} of ${r.n})`),
        el("dt", {}, "Mean shift pB − pA"),
        el("dd", { class: "compare-shift" }, withInterval(r.score_shift.mean, r.score_shift.interval, signedNum)),
        el("dt", {}, "Shift quantiles"),
        el("dd", {}, Object.entries(q).map(([k, v]) => `${k} ${signedNum(v)}`).join(", ")),
        el("dt", {}, "Thresholds"),
        el("dd", {}, `A ${num(r.thresholds.a)}, B ${num(r.thresholds.b)}`)),
      el("h3", {}, "How B's probability of bad risk moved from A's"),
      shiftChart(r, out.clientWidth),
      el("h3", {}, "Decisions"),
      confusionTable(r),
      el("h3", {}, "On real outcomes"),
      outcomesBlock(r),
      el("p", { class: "hint" }, "Intervals: " + r.interval_method + "."));
  }

  function confusionTable(r) {
    const verdicts = ["approve", "decline", "refer"];
    return scrollBox("Decisions of A against decisions of B", el("table", { class: "confusion", id: "compare-confusion" },
      el("caption", { class: "hint" }, `Rows: ${r.a} (A) decided; columns: ${r.b} (B) would have decided.`),
      el("tr", {}, el("th", { scope: "col" }, `${r.a} ↓ / ${r.b} →`), verdicts.map((v) => el("th", { scope: "col" }, v))),
      verdicts.map((row) => el("tr", {}, el("th", { scope: "row" }, row),
        verdicts.map((col) => el("td", { class: "n" + (row === col ? " same" : "") }, r.decisions[row][col]))))));
  }

  function outcomesBlock(r) {
    const o = r.outcomes;
    const parts = [el("p", { class: "hint" }, `${o.n} of these decisions have an outcome (${o.repaid} repaid, ${o.defaulted} defaulted).`)];
    if (o.message) parts.push(el("p", { class: "hint", id: "compare-outcomes-message" }, o.message));
    if (!o.n) return el("div", {}, parts);
    const rows = [["ROC AUC", "auc"], ["Cost per applicant", "cost"]];
    const cell = (block, fmt) => el("td", { class: "n" }, block ? withInterval(block.value, block.interval, fmt) : "–");
    parts.push(scrollBox("Outcome metrics", el("table", { class: "outcomes", id: "compare-outcomes" },
      el("tr", {}, el("th", { scope: "col" }, "Metric"), el("th", { scope: "col" }, `A (${r.a})`),
        el("th", { scope: "col" }, `B (${r.b})`), el("th", { scope: "col" }, "B − A")),
      rows.map(([label, key]) => el("tr", {}, el("th", { scope: "row" }, label),
        cell(o[key + "_a"], num), cell(o[key + "_b"], num), cell(o[key + "_difference"], signedNum))))));
    const c = o.costs;
    parts.push(el("p", { class: "hint" }, `Cost: approving an applicant who defaults costs ${c.false_negative}, refusing one who repays costs ${c.false_positive} (${c.source}); each model judged by its own verdict at its own threshold. Lower is better.`));
    return el("div", {}, parts);
  }

  let shiftCount = 0;

  function shiftChart(r, room) {
    // A histogram of pB − pA, bins symmetric around zero: red right (B sees more risk), green left.
    // Drawn at the width it gets (its user units are pixels, so its text keeps its size on a phone).
    const { edges, counts } = r.score_shift.histogram;
    const W = Math.round(Math.max(280, Math.min(640, room || 600))), H = 180, L = 36, B = 26, T = 8;
    const top = Math.max(...counts, 1);
    const width = (W - L) / counts.length;
    const id = "shift-" + (++shiftCount);
    const x = (value) => L + ((value - edges[0]) / (edges[edges.length - 1] - edges[0])) * (W - L);
    const bins = counts.map((n, i) => ({ n, low: edges[i], high: edges[i + 1] }));
    const moved = r.score_shift;
    const words = `Histogram of the shift pB − pA over ${r.n} decisions, from ${signedNum(edges[0])} to ${signedNum(edges[edges.length - 1])}: `
      + `${moved.higher} higher with ${r.b}, ${moved.lower} lower, ${moved.unchanged} unchanged; median ${signedNum(moved.quantiles.p50)}.`;
    const listed = bins.filter((b) => b.n).map((b) => `${signedNum(b.low)} to ${signedNum(b.high)}: ${b.n}`).join("; ");
    const chart = svg("svg", { class: "shift-chart", viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img",
      "aria-labelledby": `${id}-title ${id}-desc` },
      svg("title", { id: id + "-title" }, words),
      svg("desc", { id: id + "-desc" }, "Decisions per bin: " + listed + "."),
      svg("line", { class: "axis", x1: L, x2: W, y1: H - B, y2: H - B }),
      svg("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }),
      svg("text", { x: L - 4, y: T + 8, "text-anchor": "end" }, String(top)),
      svg("text", { x: L - 4, y: H - B, "text-anchor": "end" }, "0"),
      bins.map((b, i) => {
        const h = ((H - B - T) * b.n) / top;
        const kind = b.low >= 0 ? "up" : b.high <= 0 ? "down" : "same";
        return svg("rect", { class: kind, x: L + i * width + 1, y: H - B - h, width: Math.max(width - 2, 1), height: h,
          "data-count": b.n });
      }),
      svg("line", { class: "zero", x1: x(0), x2: x(0), y1: T, y2: H - B }),
      svg("text", { x: L, y: H - 8 }, signedNum(edges[0], 2)),
      svg("text", { x: x(0), y: H - 8, "text-anchor": "middle" }, "0"),
      svg("text", { x: W, y: H - 8, "text-anchor": "end" }, signedNum(edges[edges.length - 1], 2)));
    return el("figure", { class: "shift" }, chart,
      el("figcaption", { class: "hint" }, words + " Right of the dashed line (red): B gives a higher probability of bad risk than A; left (green): lower."));
  }

  // A deferred script runs once the document is parsed, before page.js routes on DOMContentLoaded.
  loaders.challengers = loadComparison;
  $("#compare-form").addEventListener("submit", (event) => {
    event.preventDefault();
    notify("");
    loadComparison();
  });
})();
