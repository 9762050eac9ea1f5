// The Review tab: referred decisions wait here for a person (GET /v1/reviews), who approves or
// declines each with a required reason (POST /v1/decisions/{id}/review). Loaded after page.js,
// whose helpers ($, el, apiJson, loaders, ...) it uses; the reviewer is the API key's name.
"use strict";

const reviewPaging = { cursor: null, state: "pending" };

function reviewState() {
  return $("#review-filter").elements.state.value;
}

async function loadReviews(more = false) {
  const list = $("#review-list");
  const status = $("#review-status");
  if (!more) {
    reviewPaging.cursor = null;
    reviewPaging.state = reviewState();
  }
  const params = new URLSearchParams({ state: reviewPaging.state, limit: "20" });
  if (more && reviewPaging.cursor) params.set("cursor", reviewPaging.cursor);
  try {
    const page = await apiJson("/v1/reviews?" + params.toString());
    const items = page.decisions || [];
    reviewPaging.cursor = page.next_cursor || null;
    if (!more) list.replaceChildren();
    list.append(...items.map(reviewItem));
    if (!list.children.length) {
      list.append(el("li", { class: "hint empty" },
        reviewPaging.state === "pending" ? "Nothing waits for review." : "No decision has been reviewed yet."));
    }
    $("#review-more").hidden = !reviewPaging.cursor;
    status.textContent = `${list.querySelectorAll("article").length} ${reviewPaging.state === "pending" ? "waiting" : "reviewed"}` +
      (reviewPaging.cursor ? " (more below)" : "");
  } catch (error) {
    if (error.status === 401) afterKey = () => loadReviews(more);
    if (!more) list.replaceChildren();
    status.textContent = "";
    notify(error.message);
  }
}

function reviewItem(d) {
  const id = d.id;
  const short = id.slice(0, 8);
  const heading = "review-h-" + short;
  return el("li", { "data-id": id },
    el("article", { class: "review-item", "aria-labelledby": heading },
      el("h3", { id: heading },
        el("a", { href: "#/decisions/" + encodeURIComponent(id) }, `Decision ${short}`),
        " · ", el("span", { class: "hint" }, when(d.timestamp))),
      el("p", { class: "verdict" }, decisionPill(d.target, d.decision), " ",
        `model says ${d.target} (P(bad risk) ${pct(d.probability)}, threshold ${num(d.threshold)}, model ${d.model_version})`),
      el("h4", {}, "Why it was referred"),
      reasonList(d.reasons),
      inputTable(d.input),
      d.review ? reviewSummary(d.review) : reviewForm(id, short)));
}

function reviewSummary(review) {
  if (!review) return null;
  const approve = review.decision === "approve";
  return el("p", { class: "reviewed" },
    el("span", { class: "pill " + (approve ? "good" : "bad") }, approve ? "Approved by a person" : "Declined by a person"),
    ` ${review.reviewer}, ${when(review.reviewed_at)}: `, el("q", {}, review.reason));
}

function reviewForm(id, short) {
  const reasonId = "review-reason-" + short;
  const errorId = reasonId + "-error";
  const form = el("form", { class: "review-form", novalidate: true },
    el("label", { for: reasonId }, "Reason (required)"),
    el("textarea", { id: reasonId, name: "reason", rows: "2", maxlength: "2000", required: true, "aria-describedby": errorId }),
    el("small", { class: "error", id: errorId }),
    el("div", { class: "row" },
      el("button", { type: "submit", value: "approve", class: "approve" }, "Approve"),
      el("button", { type: "submit", value: "decline", class: "decline" }, "Decline")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const verdict = event.submitter ? event.submitter.value : "approve";
    submitReview(form, id, verdict);
  });
  return form;
}

async function submitReview(form, id, verdict) {
  const reason = form.elements.reason;
  const error = $(".error", form);
  error.textContent = "";
  reason.removeAttribute("aria-invalid");
  if (!reason.value.trim()) {
    error.textContent = "Say why before you " + verdict + ".";
    reason.setAttribute("aria-invalid", "true");
    reason.focus();
    return;
  }
  const buttons = $$("button", form);
  for (const b of buttons) b.disabled = true;
  try {
    const review = await apiJson(`/v1/decisions/${encodeURIComponent(id)}/review`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ decision: verdict, reason: reason.value }),
    });
    form.replaceWith(reviewSummary(review));
    $("#review-status").textContent = `Decision ${id.slice(0, 8)} ${verdict === "approve" ? "approved" : "declined"}.`;
  } catch (failure) {
    if (failure.status === 401) afterKey = () => submitReview(form, id, verdict);
    const field = (failure.errors || []).find((e) => e.field === "reason");
    error.textContent = field ? field.message : failure.message;
    if (field) reason.setAttribute("aria-invalid", "true");
    if (failure.status === 409) {
      // Someone else reviewed it first: their review stands, and the queue is drawn again.
      notify(failure.message, "info");
      loadReviews();
    }
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

loaders.review = () => loadReviews();
$("#review-filter").addEventListener("change", () => loadReviews());
$("#review-filter").addEventListener("submit", (event) => { event.preventDefault(); loadReviews(); });
$("#review-more").addEventListener("click", () => loadReviews(true));
