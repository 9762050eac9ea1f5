// preauth's page: plain JavaScript over the JSON API. Every request carries the API key kept in
// sessionStorage (Authorization: Bearer); a 401 asks for one.
"use strict";

const KEY_STORAGE = "preauth.apiKey";
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

class ApiError extends Error {
  constructor(status, message, errors) {
    super(message);
    this.status = status;
    this.errors = errors || [];
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

let afterKey = null; // what to retry once a key is entered

async function api(path, options = {}) {
  // options.quiet: a background request (the model poll) never opens the key dialog itself.
  const { quiet, ...init } = options;
  const headers = new Headers(init.headers || {});
  const key = apiKey();
  if (key) headers.set("Authorization", "Bearer " + key);
  let response;
  try {
    response = await fetch(path, { ...init, headers });
  } catch (error) {
    throw new ApiError(0, "the server did not answer (" + error.message + ")");
  }
  if (response.status === 401) {
    if (!quiet) askForKey(key ? "The server refused this key. Enter a valid API key." : null);
    throw new ApiError(401, "this server needs an API key");
  }
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    const error = (body && body.error) || {};
    throw new ApiError(response.status, error.message || response.statusText, error.errors);
  }
  return response;
}

async function apiJson(path, options) {
  return (await api(path, options)).json();
}

// ------------------------------------------------------------------------------------------
// Small helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%");
const num = (v, d = 3) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));
const when = (ts) => (ts ? new Date(ts).toLocaleString() : "–");

function notify(message, kind = "error") {
  const box = $("#notice");
  box.textContent = message;
  box.className = "notice " + kind;
  box.hidden = !message;
}

function decisionPill(target, decision) {
  // A referral (outside what the model was trained on) is neither: a person decides.
  if (decision === "refer") return el("span", { class: "pill refer" }, "Refer · manual review");
  const bad = target === "bad risk";
  return el("span", { class: "pill " + (bad ? "bad" : "good") }, bad ? "Decline · bad risk" : "Approve · good risk");
}

function normalizeName(name) {
  // As the server's normalize_name: "SAVING ACCOUNTS" -> "saving_accounts", "Größe" -> "größe";
  // letters, digits and marks of every script are kept, the rest separates words.
  return name
    .trim()
    .replace(/^\ufeff+/, "")
    .normalize("NFKC")
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}]+/gu, "_")
    .replace(/^_+|_+$/g, "");
}

// ------------------------------------------------------------------------------------------
// API key dialog

function askForKey(why) {
  const dialog = $("#key-dialog");
  if (why) $("#key-why").textContent = why;
  $("#key-input").value = "";
  if (!dialog.open) dialog.showModal();
  $("#key-input").focus();
}

function setupKey() {
  $("#key-button").addEventListener("click", () => askForKey(null));
  $("#key-form").addEventListener("submit", () => {
    const key = $("#key-input").value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    updateKeyButton();
    notify("");
    const retry = afterKey;
    afterKey = null;
    loadBadge();
    if (retry) retry();
  });
  $("#key-clear").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    updateKeyButton();
    $("#key-dialog").close();
  });
  updateKeyButton();
}

function updateKeyButton() {
  $("#key-button").textContent = apiKey() ? "API key ✓" : "API key";
}

// ------------------------------------------------------------------------------------------
// Tabs

// Every view has its own address: #/score, #/decisions, #/decisions/<id>, #/review, #/batch, #/model,
// #/monitoring, #/challengers.
// Tabs and links only change the hash; route() draws what the hash says, so back, forward and
// reload all land on the same view.

const loaders = {};
const TABS = ["score", "decisions", "review", "batch", "model", "monitoring", "challengers"];
let currentTab = null;

function go(hash) {
  // Drawn at once (the tab under the keyboard is selected before the next key); pushState keeps
  // back and forward, which arrive as hashchange events.
  if (location.hash !== hash) history.pushState(null, "", hash);
  route();
}

function parseRoute() {
  const decode = (part) => { try { return decodeURIComponent(part); } catch (_) { return part; } };
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decode);
  const tab = TABS.includes(parts[0]) ? parts[0] : "score";
  const id = tab === "decisions" && parts[1] ? parts[1] : null;
  return { tab, id };
}

function route() {
  const { tab, id } = parseRoute();
  if (tab !== currentTab) showTab(tab);
  if (tab === "decisions") {
    if (id) showDetail(id);
    else hideDetail();
  }
}

function showTab(name) {
  currentTab = name;
  for (const button of $$("[role=tab]")) {
    const chosen = button.dataset.tab === name;
    button.setAttribute("aria-selected", String(chosen));
    button.tabIndex = chosen ? 0 : -1; // one tab stop for the tab list (WAI-ARIA tabs pattern)
  }
  for (const section of $$(".tab")) section.hidden = section.id !== "tab-" + name;
  notify("");
  if (loaders[name]) loaders[name]();
  if (servingVersion !== null) loadBadge(true);
}

function tabKeys(event) {
  // Arrow keys, Home and End move between tabs and open the one they land on.
  const tabs = $$("[role=tab]");
  const at = tabs.indexOf(event.currentTarget);
  const moves = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 };
  if (!(event.key in moves)) return;
  event.preventDefault();
  const next = tabs[(moves[event.key] + tabs.length) % tabs.length];
  next.focus();
  go("#/" + next.dataset.tab);
}

function setupTabs() {
  for (const button of $$("[role=tab]")) {
    button.addEventListener("click", () => go("#/" + button.dataset.tab));
    button.addEventListener("keydown", tabKeys);
  }
}

// ------------------------------------------------------------------------------------------
// Score an applicant

function formApplication(form) {
  const application = {};
  for (const field of $$("input[name], select[name]", form)) {
    if (field.type === "file") continue;
    if (field.tagName === "SELECT") application[field.name] = field.value === "" ? null : field.value;
    else application[field.name] = field.value === "" ? null : Number(field.value);
  }
  return application;
}

function showFieldErrors(form, errors) {
  // Each message sits under its input, which points at it (aria-describedby) and is marked invalid.
  for (const small of $$(".error", form)) small.textContent = "";
  for (const input of $$("[aria-invalid]", form)) input.removeAttribute("aria-invalid");
  for (const error of errors) {
    const target = error.field && $(`[data-error-for="${CSS.escape(error.field)}"]`, form);
    if (!target) continue;
    target.textContent = error.reason || error.message;
    const input = form.elements[error.field];
    if (input) input.setAttribute("aria-invalid", "true");
  }
}

function clientErrors(form) {
  const errors = [];
  for (const field of $$("input[name], select[name]", form)) {
    if (!field.checkValidity()) errors.push({ field: field.name, message: field.validationMessage });
  }
  return errors;
}

function scorePlaceholder(text) {
  fill($("#score-result"), el("h2", {}, "Decision"), el("p", { class: "hint" }, text));
}

function focusFirstError(form) {
  const first = $("[aria-invalid=true]", form);
  if (first) first.focus();
}

async function submitScore(event) {
  event.preventDefault();
  // A new applicant: nothing of the previous one (decision, errors, notice) stays on screen.
  const form = event.target;
  notify("");
  const local = clientErrors(form);
  showFieldErrors(form, local);
  if (local.length) {
    scorePlaceholder("No decision: correct the fields marked in the form.");
    focusFirstError(form);
    return;
  }
  scorePlaceholder("Scoring…");
  const button = $("#score-submit");
  button.disabled = true;
  try {
    const decision = await apiJson("/v1/decisions", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Preauth-Channel": "page" },
      body: JSON.stringify(formApplication(form)),
    });
    const box = $("#score-result");
    renderDecision(box, decision, true);
    if (box.getBoundingClientRect().top > window.innerHeight) box.scrollIntoView({ block: "start" });
  } catch (error) {
    if (error.status === 401) afterKey = () => form.requestSubmit();
    showFieldErrors(form, error.errors || []);
    scorePlaceholder("No decision: " + error.message);
    notify(error.message);
    focusFirstError(form);
  } finally {
    button.disabled = false;
  }
}

function probabilityBar(p, threshold) {
  const bar = el("div", { class: "gauge", title: "Probability of bad risk; the mark is the threshold" },
    el("div", { class: "fill " + (p >= threshold ? "bad" : "good"), style: `width:${(100 * p).toFixed(1)}%` }),
    el("div", { class: "mark", style: `left:${(100 * threshold).toFixed(1)}%` }));
  return bar;
}

function reasonList(reasons) {
  if (!reasons || !reasons.length) return el("p", { class: "hint" }, "No reasons recorded.");
  return el("ul", { class: "reasons" }, reasons.map((r) => {
    if (r.direction === "refer") {
      return el("li", { class: "refer" }, el("span", { class: "arrow" }, "?"), el("span", { class: "text" }, r.text));
    }
    const bad = r.direction === "towards bad risk";
    return el("li", { class: bad ? "bad" : "good" },
      el("span", { class: "arrow" }, bad ? "▲" : "▼"),
      el("span", { class: "text" }, r.text || `${r.feature} = ${r.value}`),
      el("span", { class: "contrib", title: "contribution to the log-odds of bad risk" },
        (r.contribution >= 0 ? "+" : "") + num(r.contribution, 2)));
  }));
}

function scrollBox(label, table) {
  // A wide table scrolls inside its own box (focusable, so the keyboard can scroll it too).
  return el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": label }, table);
}

const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children.flat()) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

const signed = (v) => {
  const text = Math.abs(v).toFixed(2);  // a push that rounds to 0.00 gets no sign: "−0.00" reads as a push
  return (text === "0.00" ? "" : v > 0 ? "+" : "−") + text;
};

let chartCount = 0;

function contributionChart(contributions) {
  // Every feature's push on the log-odds of bad risk as a signed bar around zero (red right:
  // towards bad risk; green left: towards good risk), largest first; the bias is the starting point.
  // Laid out in percentages so it fits any width; the title and caption say the same in words.
  if (!contributions) return null;
  const bias = contributions.bias ?? 0;
  const rows = Object.entries(contributions).filter(([name]) => name !== "bias")
    .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  if (!rows.length) return null;
  const scale = Math.max(...rows.map(([, v]) => Math.abs(v))) || 1;
  const ROW = 24, TOP = 6;
  const height = TOP * 2 + rows.length * ROW;
  const zero = 74, half = 25; // % of the width
  const id = "contrib-" + (++chartCount);
  const words = rows.map(([name, v]) => `${name} ${signed(v)}`).join(", ");
  const chart = svg("svg", { class: "contrib-chart", width: "100%", height: String(height), role: "img", "aria-labelledby": id + "-title" },
    svg("title", { id: id + "-title" }, `Contributions to the log-odds of bad risk: ${words}; bias ${signed(bias)}.`),
    svg("line", { class: "axis", x1: zero + "%", x2: zero + "%", y1: "0", y2: String(height) }),
    rows.map(([name, v], i) => {
      const y = TOP + i * ROW;
      const width = Math.max((half * Math.abs(v)) / scale, 0.2); // a tiny push still shows, ending at zero
      return svg("g", { class: "bar " + (v > 0 ? "bad" : "good"), "data-feature": name, "data-value": String(v) },
        svg("text", { x: "0", y: String(y + 16), class: "name" }, name),
        svg("text", { x: "46%", y: String(y + 16), class: "value", "text-anchor": "end" }, signed(v)),
        svg("rect", { x: (v > 0 ? zero : zero - width) + "%", y: String(y + 4), width: width + "%", height: String(ROW - 8), rx: "2" }));
    }));
  return el("figure", { class: "contributions" }, chart,
    el("figcaption", { class: "hint" },
      `Each input's contribution to the log-odds of bad risk: right (red) towards bad risk, left (green) towards good risk. `
      + `They add to the bias (${signed(bias)}) to give the model's margin, logit(probability).`));
}

function fill(box, ...children) {
  box.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function renderDecision(box, d, fresh) {
  fill(box,
    fresh ? el("h2", {}, "Decision") : el("div", { class: "detail-head" },
      el("h2", { tabindex: "-1" }, "Decision detail"),
      el("a", { class: "button ghost", id: "detail-close", href: "#/decisions" }, "Close")),
    el("div", { class: "verdict" }, decisionPill(d.target, d.decision)),
    fresh ? null : reviewSummary(d.review), // review.js
    probabilityBar(d.probability, d.threshold),
    el("dl", { class: "stats" },
      el("dt", {}, "Probability of bad risk"), el("dd", { class: "probability" }, pct(d.probability)),
      el("dt", {}, "Confidence"), el("dd", { class: "confidence" }, pct(d.confidence)),
      el("dt", {}, "Threshold"), el("dd", {}, num(d.threshold)),
      el("dt", {}, "Model"), el("dd", {}, d.model_version),
      el("dt", {}, "Time"), el("dd", {}, when(d.timestamp)),
      el("dt", {}, "Decision id"), el("dd", { class: "mono decision-id" }, d.id)),
    el("h3", {}, "Principal reasons"),
    reasonList(d.reasons),
    d.contributions ? el("h3", {}, "What pushed the decision") : null,
    contributionChart(d.contributions),
    fresh ? el("p", { class: "hint" }, "Stored. ",
      el("a", { href: "#/decisions/" + encodeURIComponent(d.id) }, "See it in Decisions")) : null,
    fresh ? null : inputTable(d.input),
  );
}

function inputTable(input) {
  return el("div", {},
    el("h3", {}, "Application as given"),
    scrollBox("Application as given", el("table", { class: "kv" }, Object.entries(input || {}).map(([k, v]) =>
      el("tr", {}, el("td", {}, k), el("td", {}, v === null ? "–" : String(v)))))));
}

// ------------------------------------------------------------------------------------------
// Decisions

const paging = { cursors: [null], index: 0 };

function filterParams() {
  const form = $("#filters");
  const params = new URLSearchParams();
  for (const name of ["since", "until"]) {
    const value = form.elements[name].value;
    if (value) params.set(name, new Date(value).toISOString());
  }
  for (const name of ["target", "model_version", "limit"]) {
    const value = form.elements[name].value;
    if (value) params.set(name, value);
  }
  return params;
}

async function loadDecisions() {
  const params = filterParams();
  const cursor = paging.cursors[paging.index];
  if (cursor) params.set("cursor", cursor);
  const body = $("#decisions-table tbody");
  try {
    const page = await apiJson("/v1/decisions?" + params.toString());
    const items = page.items || page.decisions || page.data || [];
    const next = page.next_cursor || page.cursor || page.next || null;
    paging.cursors[paging.index + 1] = next;
    body.replaceChildren(...items.map(decisionRow));
    if (!items.length) body.append(el("tr", {}, el("td", { colspan: tableWidth(), class: "hint" }, "No decisions match.")));
    $("#prev-page").disabled = paging.index === 0;
    $("#next-page").disabled = !next;
    $("#page-info").textContent = `page ${paging.index + 1} · ${items.length} shown`;
  } catch (error) {
    if (error.status === 401) afterKey = loadDecisions;
    body.replaceChildren(el("tr", {}, el("td", { colspan: tableWidth(), class: "hint" }, "No decisions shown: " + error.message)));
    $("#next-page").disabled = true;
    $("#page-info").textContent = "";
    notify(error.message);
  }
}

// The application fields the list shows come from the served model's schema: the page's table
// header names them, each with every spelling of its field (data-spellings), since a stored input keeps
// the caller's spelling.
function listedColumns() {
  return $$("#decisions-table thead th[data-spellings]").map((th) => ({
    keys: th.dataset.spellings.split(" "),
    numeric: th.classList.contains("n"),
  }));
}

function listedValue(input, keys) {
  for (const [name, value] of Object.entries(input)) {
    if (keys.includes(normalizeName(name))) return value;
  }
  return undefined;
}

function tableWidth() {
  return $$("#decisions-table thead th").length;
}

function decisionRow(d) {
  const input = d.input || {};
  // The whole row opens the decision for a mouse; its first cell is a real link for the keyboard.
  const href = "#/decisions/" + encodeURIComponent(d.id);
  return el("tr", { class: "clickable", "data-id": d.id, onclick: (e) => { if (!e.target.closest("a")) go(href); } },
    el("td", {}, el("a", { class: "open-decision", href, "aria-label": `Decision of ${when(d.timestamp)} (${d.id.slice(0, 8)})` }, when(d.timestamp))),
    el("td", {}, decisionPill(d.target, d.decision)),
    el("td", { class: "n" }, pct(d.probability)),
    el("td", { class: "n" }, pct(d.confidence)),
    ...listedColumns().map((c) => el("td", { class: c.numeric ? "n" : null }, listedValue(input, c.keys) ?? "–")),
    el("td", {}, d.model_version),
    el("td", {}, d.channel || "–"),
    el("td", { class: "mono" }, d.id.slice(0, 8)));
}

let detailShown = null;

async function showDetail(id) {
  // The detail opens at the top of the Decisions view, above the list, and takes the focus.
  const box = $("#decision-detail");
  if (detailShown === id && !box.hidden) return;
  detailShown = id;
  try {
    const d = await apiJson("/v1/decisions/" + encodeURIComponent(id));
    if (detailShown !== id) return; // another decision was asked for meanwhile
    renderDecision(box, d, false);
    box.hidden = false;
    window.scrollTo(0, 0);
    $("h2", box).focus();
  } catch (error) {
    if (error.status === 401) afterKey = () => { detailShown = null; route(); };
    detailShown = null;
    box.hidden = true;
    notify(error.message);
  }
}

function hideDetail() {
  const box = $("#decision-detail");
  const id = detailShown;
  detailShown = null;
  if (box.hidden) return;
  box.hidden = true;
  box.replaceChildren();
  // Back where the keyboard was: the decision's own row.
  const link = id && $(`#decisions-table tr[data-id="${CSS.escape(id)}"] a.open-decision`);
  if (link) link.focus();
}

// Export: every decision the filters select (all pages, not only the one shown), with reviews and
// outcomes, as the API writes it (GET /v1/decisions/export): the columns come from one place.

async function exportDecisions(format = "csv") {
  const buttons = $$(".export-button");
  const state = $("#export-state");
  const params = filterParams();
  params.delete("limit");
  params.set("format", format);
  for (const b of buttons) b.disabled = true;
  notify("");
  state.textContent = "Exporting decisions…";
  try {
    const blob = await (await api("/v1/decisions/export?" + params.toString())).blob();
    const url = URL.createObjectURL(blob);
    const stamp = new Date().toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-");
    const name = `decisions-${stamp}.${format}`;
    const link = el("a", { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    state.textContent = `${name} exported (${Math.max(1, Math.round(blob.size / 1024))} kB).`;
  } catch (error) {
    if (error.status === 401) afterKey = () => exportDecisions(format);
    state.textContent = "";
    notify(error.message);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

function setupDecisions() {
  $("#decisions-export").addEventListener("click", () => exportDecisions("csv"));
  $("#decisions-export-parquet").addEventListener("click", () => exportDecisions("parquet"));
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    paging.cursors = [null];
    paging.index = 0;
    notify("");
    loadDecisions();
  });
  $("#next-page").addEventListener("click", () => { paging.index += 1; loadDecisions(); });
  $("#prev-page").addEventListener("click", () => { paging.index = Math.max(0, paging.index - 1); loadDecisions(); });
  loaders.decisions = () => { loadVersions(); loadDecisions(); };
  $("#decision-detail").addEventListener("keydown", (event) => {
    if (event.key === "Escape") go("#/decisions");
  });
}

// ------------------------------------------------------------------------------------------
// Batch

let batchUrl = null;

async function submitBatch(event) {
  event.preventDefault();
  const file = $("#batch-file").files[0];
  const out = $("#batch-result");
  // A new file: the previous file's results and error are gone before this one is sent.
  notify("");
  out.replaceChildren();
  if (!file) { notify("Choose a file first."); return; }
  const data = new FormData();
  data.append("file", file);
  $("#batch-submit").disabled = true;
  out.replaceChildren(el("p", { class: "hint" }, "Scoring " + file.name + "…"));
  try {
    const result = await apiJson("/ui/batch", { method: "POST", body: data });
    if (batchUrl) URL.revokeObjectURL(batchUrl);
    batchUrl = URL.createObjectURL(new Blob([result.results_csv], { type: "text/csv" }));
    fill(out,
      el("p", { class: "summary" },
        el("b", {}, `${result.rows} rows`), `: ${result.scored} scored and stored, `,
        el("b", { class: result.rejected ? "bad-text" : "" }, `${result.rejected} rejected`), ` (model ${result.model_version}).`),
      el("a", { class: "button", id: "batch-download", href: batchUrl, download: result.filename }, "Download " + result.filename),
      result.rejects.length ? el("div", {},
        el("h3", {}, "Rejected rows"),
        scrollBox("Rejected rows", el("table", { class: "rejects" },
          el("tr", {}, el("th", {}, "Row"), el("th", {}, "Field"), el("th", {}, "Value"), el("th", {}, "Reason")),
          result.rejects.map((r) => el("tr", {}, el("td", {}, r.row), el("td", {}, r.field || "–"),
            el("td", {}, r.value ?? "–"), el("td", {}, r.message)))))) : null,
      result.decisions.length ? el("div", {},
        el("h3", {}, "Scored rows" + (result.scored > result.decisions.length ? ` (first ${result.decisions.length})` : "")),
        scrollBox("Scored rows", el("table", { class: "scored" },
          el("tr", {}, el("th", {}, "Row"), el("th", {}, "Decision"), el("th", {}, "P(bad risk)"), el("th", {}, "Confidence"), el("th", {}, "Reasons")),
          result.decisions.map((d) => el("tr", {}, el("td", {}, d.row), el("td", {}, decisionPill(d.target, d.decision)),
            el("td", { class: "n" }, pct(d.probability)), el("td", { class: "n" }, pct(d.confidence)),
            el("td", { class: "small" }, d.reasons.join("; "))))))) : null);
  } catch (error) {
    if (error.status === 401) afterKey = () => $("#batch-form").requestSubmit();
    out.replaceChildren();
    notify(error.message);
  } finally {
    $("#batch-submit").disabled = false;
  }
}

// ------------------------------------------------------------------------------------------
// Model

let reportUrl = null;
let servingVersion = null;
const MODEL_POLL_MS = 4000;

async function loadBadge(quiet = false) {
  // The header names the model deciding now; a promotion shows within one poll (or a tab change).
  try {
    const card = await apiJson("/v1/model", { quiet });
    const changed = servingVersion !== null && servingVersion !== card.version;
    servingVersion = card.version;
    $("#model-badge").textContent = "model " + card.version;
    if (changed && currentTab === "model") loadModel();
    return card;
  } catch (error) {
    if (error.status === 401 && !quiet) afterKey = null;
    return null;
  }
}

function pollModel() {
  setInterval(() => {
    if (document.visibilityState === "visible" && !$("#key-dialog").open) loadBadge(true);
  }, MODEL_POLL_MS);
}

async function loadVersions() {
  try {
    const card = await apiJson("/ui/model");
    const select = $("#filter-version");
    const chosen = select.value;
    const versions = Array.from(new Set([card.version, ...(card.versions_with_decisions || [])]));
    select.replaceChildren(el("option", { value: "" }, "any"), ...versions.map((v) => el("option", { value: v }, v)));
    select.value = chosen;
  } catch (_) { /* the table shows the error */ }
}

function bandText(band) {
  // Which borderline decisions go to a person, and whether the bundle or PREAUTH_REVIEW_BAND says so.
  const used = band.band > 0
    ? `±${band.band} around the threshold goes to a person`
    : "none (only applications unlike the training data go to a person)";
  if (band.source !== "bundle") return `${used}; set by PREAUTH_REVIEW_BAND, the bundle's own is ${band.trained ?? "none"}`;
  return band.trained === null ? `${used}; the bundle is older than review bands` : `${used}; the bundle's own`;
}

async function loadModel() {
  const box = $("#model-card");
  let card;
  try {
    card = await apiJson("/ui/model");
  } catch (error) {
    if (error.status === 401) afterKey = loadModel;
    box.replaceChildren(el("h2", {}, "Serving model"), el("p", { class: "hint" }, error.message));
    return;
  }
  const metricNames = [["roc_auc", "ROC AUC"], ["pr_auc", "PR AUC"], ["accuracy", "Accuracy"], ["precision", "Precision"],
    ["recall", "Recall"], ["f1", "F1"], ["brier", "Brier"]];
  fill(box,
    el("h2", {}, "Serving model ", el("span", { class: "version" }, card.version)),
    el("dl", { class: "stats" },
      el("dt", {}, "Learned from"), el("dd", { class: "learned-from" }, card.learned_from),
      el("dt", {}, "Threshold"), el("dd", {}, num(card.threshold) + " (refuse when P(bad risk) ≥ threshold)"),
      el("dt", {}, "Review band"), el("dd", { class: "review-band" }, bandText(card.review_band)),
      el("dt", {}, "Created"), el("dd", {}, when(card.created_at)),
      el("dt", {}, "Inputs"), el("dd", {}, (card.features || []).join(", ")),
      el("dt", {}, "Left out"), el("dd", {}, (card.excluded || []).join(", ") || "nothing"),
      card.cv_auc != null ? el("dt", {}, "Train / CV AUC") : null,
      card.cv_auc != null ? el("dd", {}, `${num(card.train_auc)} / ${num(card.cv_auc)} (gap ${num(card.auc_gap)})`) : null),
    el("h3", {}, "Holdout metrics"),
    el("p", { class: "hint" }, "On applications set aside before the search, at the threshold; each column says which labels it was measured against."),
    card.metrics.length ? scrollBox("Holdout metrics", el("table", { class: "metrics" },
      el("tr", {}, el("th", {}, "Metric"), card.metrics.map((m) => el("th", {}, "vs " + m.measured_against))),
      metricNames.map(([key, label]) => el("tr", {}, el("td", {}, label), card.metrics.map((m) => el("td", { class: "n" }, num(m[key]))))),
      el("tr", {}, el("td", {}, "Applicants / bad risk"), card.metrics.map((m) => el("td", { class: "n" }, `${m.n} / ${m.positives}`)))))
      : el("p", { class: "hint" }, "This bundle carries no holdout metrics."),
    el("p", { class: "row" },
      el("a", { class: "button", id: "report-link", href: "#", target: "_blank", "aria-disabled": "true" }, "Open the evaluation report"),
      el("a", { class: "button ghost", id: "report-download", href: "#", download: `report-${card.version}.html`, "aria-disabled": "true" }, "Download it"),
      el("span", { class: "hint", id: "report-state" }, card.has_report ? "Loading the report…" : "No report for this model.")));
  if (!card.has_report) return;
  try {
    const blob = await (await api("/ui/report")).blob();
    if (reportUrl) URL.revokeObjectURL(reportUrl);
    reportUrl = URL.createObjectURL(new Blob([blob], { type: "text/html" }));
    for (const id of ["#report-link", "#report-download"]) {
      $(id).href = reportUrl;
      $(id).removeAttribute("aria-disabled");
    }
    $("#report-state").textContent = `report.html of ${card.version}, ${(blob.size / 1024).toFixed(0)} kB`;
  } catch (error) {
    $("#report-state").textContent = error.message;
  }
}

// ------------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  setupKey();
  setupTabs();
  setupDecisions();
  loaders.model = loadModel;
  $("#score-form").addEventListener("submit", submitScore);
  $("#score-form").addEventListener("reset", (event) => {
    showFieldErrors(event.target, []);
    notify("");
    scorePlaceholder("Fill in the form and press Score.");
  });
  $("#batch-form").addEventListener("submit", submitBatch);
  window.addEventListener("hashchange", route);
  route();
  loadBadge();
  pollModel();
});
