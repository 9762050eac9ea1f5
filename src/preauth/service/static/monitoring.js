// The Monitoring tab: drift (PSI per input and of the score), decision rates over time and, once
// outcomes are recorded, live AUC, calibration and approval vs default by score band. It draws
// GET /v1/monitoring (the numbers of `preauth monitor`); page.js provides el, svg, apiJson, fill,
// scrollBox, pct, num, notify and the tab machinery (loaders, TABS).
"use strict";

const FLAG_WORDS = { ok: "ok", watch: "watch (≥ 0.1)", act: "act (≥ 0.25)" };

function flagPill(flag) {
  if (!flag) return el("span", { class: "hint" }, "–");
  return el("span", { class: "pill flag " + flag }, FLAG_WORDS[flag]);
}

function monitoringQuery(form) {
  const params = new URLSearchParams();
  const since = form.elements.since.value;
  if (since) params.set("since", new Date(since).toISOString());
  params.set("every", form.elements.every.value);
  return params;
}

async function loadMonitoring() {
  const form = $("#monitoring-form");
  const box = $("#monitoring-result");
  box.setAttribute("aria-busy", "true");
  let report;
  try {
    report = await apiJson("/v1/monitoring?" + monitoringQuery(form));
  } catch (error) {
    if (error.status === 401) afterKey = loadMonitoring;
    fill(box, el("p", { class: "hint" }, error.message));
    box.removeAttribute("aria-busy");
    return;
  }
  fill(box, monitoringSummary(report), driftSection(report), ratesSection(report), liveSection(report.live));
  box.removeAttribute("aria-busy");
}

function monitoringSummary(r) {
  const worst = r.worst ? el("span", {}, " Worst drift flag: ", flagPill(r.worst)) : null;
  return el("div", { class: "card", id: "monitoring-summary" },
    el("h2", {}, "Model ", el("span", { class: "version" }, r.model_version), ": ", `${r.decisions} decisions`),
    r.decisions ? el("p", { class: "summary" },
      `Approve ${pct(r.approve_rate)} · decline ${pct(r.decline_rate)} · refer ${pct(r.refer_rate)}.`, worst) : null,
    r.reference ? el("p", { class: "hint" }, "Compared with the training reference: " + r.reference.source + ".") : null,
    (r.notes || []).map((note) => el("p", { class: "hint monitoring-note" }, note)));
}

function driftSection(r) {
  if (!r.inputs.length) return null;
  const rows = [...r.inputs, { feature: "score", ...(r.score || {}) }];
  return el("div", { class: "card" },
    el("h2", {}, "Drift: population stability index"),
    el("p", { class: "hint" }, "How far each input, and the score, has moved from the training data: below 0.1 ok, 0.1 watch, 0.25 or more act."),
    psiChart(rows),
    scrollBox("Drift flags", el("table", { class: "psi-table", id: "psi-table" },
      el("tr", {}, el("th", {}, "Input"), el("th", {}, "PSI"), el("th", {}, "Flag"), el("th", {}, "Largest move (training → live)")),
      rows.map((item) => el("tr", { "data-feature": item.feature },
        el("td", {}, item.feature), el("td", { class: "n" }, num(item.psi)), el("td", {}, flagPill(item.flag)),
        el("td", { class: "small" }, largestMove(item.bins)))))));
}

function largestMove(bins) {
  if (!bins || !bins.length) return "–";
  const top = bins.reduce((a, b) => (Math.abs(b.live - b.reference) > Math.abs(a.live - a.reference) ? b : a));
  return `${top.bin}: ${pct(top.reference)} → ${pct(top.live)}`;
}

function psiChart(rows) {
  // One bar per input, the 0.1 and 0.25 lines across; laid out in percentages so it fits any
  // width. Its title says the same in words, and the table below gives every number.
  const ROW = 24, TOP = 18;
  const height = TOP + rows.length * ROW + 4;
  const left = 38, span = 58; // % of the width: names on the left, bars on the right
  const top = Math.max(0.3, ...rows.map((r) => r.psi || 0));
  const x = (v) => left + (span * Math.min(v, top)) / top;
  const words = rows.map((r) => `${r.feature} ${num(r.psi)} (${r.flag || "no value"})`).join(", ");
  return el("figure", { class: "monitoring-chart" },
    svg("svg", { class: "psi-chart", width: "100%", height: String(height), role: "img", "aria-labelledby": "psi-chart-title" },
      svg("title", { id: "psi-chart-title" }, `PSI per input against the training reference: ${words}.`),
      // the two labels sit either side of their lines, so they never overlap however close
      [[0.1, "watch 0.1", "end", "-3"], [0.25, "0.25 act", "start", "3"]].map(([v, label, anchor, dx]) => svg("g", { class: "limit" },
        svg("line", { x1: x(v) + "%", x2: x(v) + "%", y1: String(TOP - 4), y2: String(height) }),
        svg("text", { x: x(v) + "%", dx, y: "11", "text-anchor": anchor }, label))),
      rows.map((r, i) => {
        const y = TOP + i * ROW;
        return svg("g", { class: "bar " + (r.flag || "none"), "data-feature": r.feature },
          svg("text", { x: "0", y: String(y + 16), class: "name" }, r.feature),
          svg("rect", { x: left + "%", y: String(y + 4), width: Math.max(x(r.psi || 0) - left, 0.3) + "%", height: String(ROW - 8), rx: "2" }));
      })));
}

function ratesSection(r) {
  if (!r.periods.length) return null;
  return el("div", { class: "card" },
    el("h2", {}, `Decisions per ${r.every}`),
    ratesChart(r.periods, r.every),
    scrollBox(`Decisions per ${r.every}`, el("table", { class: "periods-table", id: "periods-table" },
      el("tr", {}, ["Period (UTC)", "Decisions", "Approve", "Decline", "Refer", "Score PSI"].map((h) => el("th", {}, h))),
      r.periods.map((p) => el("tr", {},
        el("td", {}, p.start.slice(0, 10)), el("td", { class: "n" }, p.decisions), el("td", { class: "n" }, pct(p.approve_rate)),
        el("td", { class: "n" }, pct(p.decline_rate)), el("td", { class: "n" }, pct(p.refer_rate)), el("td", { class: "n" }, num(p.score_psi)))))));
}

const SERIES = [["approve_rate", "approve"], ["decline_rate", "decline"], ["refer_rate", "refer"]];

function ratesChart(periods, every) {
  // Approve, decline and refer rates per period as lines (points when there is one period);
  // x in percentages of the width, y in pixels: 0% at the bottom, 100% at the top.
  const HEIGHT = 180, TOP = 10, BOTTOM = 150, LEFT = 9, RIGHT = 98;
  const x = (i) => (periods.length === 1 ? (LEFT + RIGHT) / 2 : LEFT + ((RIGHT - LEFT) * i) / (periods.length - 1));
  const y = (v) => BOTTOM - (BOTTOM - TOP) * (v || 0);
  const words = periods.map((p) => `${p.start.slice(0, 10)}: approve ${pct(p.approve_rate)}, decline ${pct(p.decline_rate)}, refer ${pct(p.refer_rate)}`).join("; ");
  const labelled = periods.length <= 8 ? periods.map((p, i) => [p, i]) : [[periods[0], 0], [periods[periods.length - 1], periods.length - 1]];
  return el("figure", { class: "monitoring-chart" },
    svg("svg", { class: "rates-chart", width: "100%", height: String(HEIGHT), role: "img", "aria-labelledby": "rates-chart-title" },
      svg("title", { id: "rates-chart-title" }, `Decision rates per ${every}: ${words}.`),
      [0, 0.5, 1].map((v) => svg("g", { class: "grid" },
        svg("line", { x1: LEFT + "%", x2: RIGHT + "%", y1: String(y(v)), y2: String(y(v)) }),
        svg("text", { x: "0", y: String(y(v) + 4) }, (100 * v).toFixed(0) + "%"))),
      labelled.map(([p, i]) => svg("text", { class: "tick", x: x(i) + "%", y: String(HEIGHT - 8), "text-anchor": "middle" }, p.start.slice(5, 10))),
      SERIES.map(([key, name]) => svg("g", { class: "series " + name },
        periods.slice(1).map((p, i) => svg("line", { x1: x(i) + "%", x2: x(i + 1) + "%", y1: String(y(periods[i][key])), y2: String(y(p[key])) })),
        periods.map((p, i) => svg("circle", { cx: x(i) + "%", cy: String(y(p[key])), r: "3.5" }))))),
    el("figcaption", { class: "legend" }, SERIES.map(([, name]) => el("span", { class: "key-" + name }, name))));
}

function liveSection(live) {
  if (!live) {
    return el("div", { class: "card" }, el("h2", {}, "Live quality"),
      el("p", { class: "hint", id: "live-none" }, "No outcomes recorded for these decisions yet: live AUC and calibration appear once outcomes are imported (preauth outcomes import)."));
  }
  const interval = live.auc_interval ? ` (95% interval ${num(live.auc_interval[0])}–${num(live.auc_interval[1])})` : "";
  const c = live.calibration;
  return el("div", { class: "card" },
    el("h2", {}, "Live quality"),
    el("dl", { class: "stats", id: "live-stats" },
      el("dt", {}, "Outcomes"), el("dd", {}, `${live.outcomes} (${live.defaulted} defaulted)`),
      el("dt", {}, "AUC"), el("dd", {}, num(live.auc) + interval),
      el("dt", {}, "Mean P(bad risk)"), el("dd", {}, pct(c.mean_predicted)),
      el("dt", {}, "Observed default rate"), el("dd", {}, pct(c.observed_default_rate)),
      el("dt", {}, "ECE"), el("dd", {}, num(c.ece))),
    el("h3", {}, "Approval vs default by score band"),
    scrollBox("Approval vs default by score band", el("table", { class: "bands-table" },
      el("tr", {}, ["P(bad risk)", "Decisions", "Approved", "Outcomes", "Defaulted"].map((h) => el("th", {}, h))),
      live.bands.map((b) => el("tr", {}, el("td", {}, b.band), el("td", { class: "n" }, b.decisions),
        el("td", { class: "n" }, pct(b.approval_rate)), el("td", { class: "n" }, b.outcomes), el("td", { class: "n" }, pct(b.default_rate)))))));
}

// Deferred, after page.js and before DOMContentLoaded: the loader is in place when page.js routes
// to #/monitoring on load.
loaders.monitoring = loadMonitoring;
$("#monitoring-form").addEventListener("submit", (event) => {
  event.preventDefault();
  loadMonitoring();
});
