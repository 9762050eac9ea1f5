"""Challengers: weigh a shadow model against the incumbent on the applications production decided.

``preauth models shadow vN`` makes the service score every application with a second model and
keep its score beside the decision (:data:`preauth.store.shadow_scores`), never acting on it.
:func:`compare` puts two versions side by side on every stored decision that has both their
scores (decided by A and shadowed by B, or the other way round, e.g. after a promotion), so both
models are judged on exactly the same applicants:

* how often they decide the same (approve / decline / refer), and a confusion of their decisions;
* how B's probability of bad risk moves from A's (mean, quantiles, a histogram for the page);
* once outcomes are recorded (``preauth outcomes import``): each model's ROC AUC and cost per
  applicant with the bundle's cost matrix, and the differences B − A. Cost counts each model's
  own verdict at its own threshold (a referred application by the verdict the model gave it):
  what the model would cost if its word were taken.

Every figure has a 95% percentile bootstrap interval over the same resampled rows for both models
(a paired bootstrap, :func:`preauth.evaluation.percentile_bootstrap`): the difference of two
correlated AUCs is much narrower than either interval suggests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from .applications import GERMAN_COSTS, Costs
from .bundles import read_aliases, read_meta
from .decisions import APPROVE, DECLINE, REFER
from .errors import InputError, ModelBundleError
from .evaluation import (
    BOOTSTRAP_RESAMPLES,
    expected_cost,
    percentile_bootstrap,
    roc_auc,
)
from .outcomes import outcomes
from .store import DecisionStore, decisions, filtered, shadow_scores

VERDICTS = (APPROVE, DECLINE, REFER)
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HISTOGRAM_BINS = 20


@dataclass(frozen=True)
class Pairs:
    """Both models' scores of the same decided applications, row by row (A first)."""

    a: str
    b: str
    p_a: np.ndarray
    p_b: np.ndarray
    threshold_a: float
    threshold_b: float
    decision_a: np.ndarray
    decision_b: np.ndarray
    defaulted: np.ndarray
    """1 defaulted, 0 repaid, -1 no outcome yet."""
    a_in_production: int
    """Rows decided by A with B in the shadow (the rest: decided by B, A in the shadow)."""

    @property
    def n(self) -> int:
        return len(self.p_a)


def version_names(models_dir: Path, *names: str) -> list[str]:
    """Versions as the store keeps them: an alias of ``models_dir`` (``production``, ``shadow``) is
    followed, anything else is taken as a version name (the store may hold versions no longer here)."""
    try:
        aliases = read_aliases(models_dir)
    except ModelBundleError:
        aliases = {}
    return [aliases.get(name, name) for name in names]


def scored_versions(store: DecisionStore) -> list[str]:
    """Every version with stored decisions or shadow scores."""
    with store.engine.connect() as connection:
        found = set(connection.execute(sa.select(decisions.c.model_version).distinct()).scalars())
        found |= set(connection.execute(sa.select(shadow_scores.c.model_version).distinct()).scalars())
    return sorted((str(v) for v in found), key=_version_order)


def _version_order(version: str) -> tuple[int, str]:
    digits = version[1:] if version.startswith("v") else ""
    return (int(digits), version) if digits.isdigit() else (1 << 30, version)


def read_pairs(
    store: DecisionStore,
    a: str,
    b: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    known_only: bool = True,
) -> Pairs:
    """Decisions scored by both ``a`` and ``b`` (one in production, the other in the shadow), with
    their outcomes; ``since`` inclusive, ``until`` exclusive, on the decision's time.

    Raises :class:`InputError` (its ``column`` ``a`` or ``b``) for the same version twice, or, with
    ``known_only``, for a version that has never scored anything in this store (a typo, usually;
    the live pair just after ``preauth models shadow`` is not one, and is asked for without it).
    """
    if a == b:
        raise _naming("b", f"compare two different versions (got {a} twice)")
    known = scored_versions(store) if known_only else []
    for column, version in (("a", a), ("b", b)) if known_only else ():
        if version not in known:
            seen = ", ".join(known) or "none yet"
            raise _naming(
                column, f"{version} has no decision or shadow score in this store (versions seen: {seen})"
            )
    rows: list[tuple[float, float, float, float, str, str, int]] = []
    a_first = 0
    for production, shadow in ((a, b), (b, a)):
        query = (
            sa.select(
                decisions.c.probability,
                decisions.c.threshold,
                decisions.c.decision,
                decisions.c.is_fraud,
                shadow_scores.c.probability.label("shadow_probability"),
                shadow_scores.c.threshold.label("shadow_threshold"),
                shadow_scores.c.decision.label("shadow_decision"),
                outcomes.c.outcome,
            )
            .join(shadow_scores, shadow_scores.c.decision_id == decisions.c.id)
            .outerjoin(outcomes, outcomes.c.decision_id == decisions.c.id)
            .where(decisions.c.model_version == production, shadow_scores.c.model_version == shadow)
            .order_by(decisions.c.seq)
        )
        with store.engine.connect() as connection:
            found = list(connection.execute(filtered(query, since=since, until=until)).mappings())
        for row in found:
            # A decision stored before the decision column derives it, as Decision.from_row does.
            made = row["decision"] or (DECLINE if row["is_fraud"] else APPROVE)
            mine = (float(row["probability"]), float(row["threshold"]), made)
            theirs = (
                float(row["shadow_probability"]),
                float(row["shadow_threshold"]),
                row["shadow_decision"],
            )
            first, second = (mine, theirs) if production == a else (theirs, mine)
            outcome = {"defaulted": 1, "repaid": 0}.get(row["outcome"] or "", -1)
            rows.append((first[0], second[0], first[1], second[1], first[2], second[2], outcome))
        if production == a:
            a_first = len(rows)
    columns = list(zip(*rows, strict=True)) if rows else [()] * 7
    return Pairs(
        a=a,
        b=b,
        p_a=np.asarray(columns[0], dtype=np.float64),
        p_b=np.asarray(columns[1], dtype=np.float64),
        threshold_a=_one_threshold(columns[2]),
        threshold_b=_one_threshold(columns[3]),
        decision_a=np.asarray(columns[4], dtype=object),
        decision_b=np.asarray(columns[5], dtype=object),
        defaulted=np.asarray(columns[6], dtype=np.int64),
        a_in_production=a_first,
    )


def _naming(parameter: str, message: str) -> InputError:
    """A refusal naming the parameter for a 422 answer; the CLI prints the message alone."""
    error = InputError(message)
    error.column = parameter
    return error


def _one_threshold(values: Any) -> float:
    """A version's threshold (one per bundle); the most frequent if rows were edited by hand."""
    if not len(values):
        return float("nan")
    found, counts = np.unique(np.asarray(values, dtype=np.float64), return_counts=True)
    return float(found[int(np.argmax(counts))])


@dataclass(frozen=True)
class RecordedCosts:
    """The cost matrix cost per applicant is measured with (the schema's :class:`Costs`, as a
    bundle's ``threshold_rule`` records it), and where it came from."""

    costs: Costs = GERMAN_COSTS
    source: str = "German Credit's cost matrix (no bundle read)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "false_negative": self.costs.approve_bad,
            "false_positive": self.costs.refuse_good,
            "source": self.source,
        }


def bundle_costs(models_dir: Path, version: str) -> RecordedCosts:
    """The cost matrix ``version``'s threshold was chosen with (its ``threshold_rule``), else the default."""
    try:
        rule = read_meta(models_dir / version).get("threshold_rule") or {}
    except ModelBundleError:
        return RecordedCosts(source=f"German Credit's cost matrix ({version} is not in {models_dir})")
    fn, fp = rule.get("cost_false_negative"), rule.get("cost_false_positive")
    if isinstance(fn, (int, float)) and isinstance(fp, (int, float)):
        return RecordedCosts(Costs(float(fn), float(fp)), f"{version}'s threshold rule")
    return RecordedCosts(source=f"German Credit's cost matrix ({version} records no costs)")


def compare(
    pairs: Pairs, costs: RecordedCosts | None = None, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    """Everything ``preauth models compare`` and ``GET /v1/models/compare`` say, JSON-ready.

    With nothing to compare, ``n`` is 0 and ``message`` says why; without outcomes (or with one
    class only), ``outcomes.message`` says why there is no AUC (or cost).
    """
    costs = costs or RecordedCosts()
    a, b = pairs.a, pairs.b
    out: dict[str, Any] = {
        "a": a,
        "b": b,
        "n": pairs.n,
        "a_in_production": pairs.a_in_production,
        "b_in_production": pairs.n - pairs.a_in_production,
        "thresholds": {"a": _finite(pairs.threshold_a), "b": _finite(pairs.threshold_b)},
    }
    if pairs.n == 0:
        out["message"] = (
            f"nothing to compare: no stored decision has scores of both {a} and {b} (one deciding, the "
            f"other in the shadow); `preauth models shadow {b}` makes the service score every request "
            f"with {b} beside production"
        )
        return out
    shift = pairs.p_b - pairs.p_a
    same = pairs.decision_a == pairs.decision_b
    known = pairs.defaulted >= 0
    y = pairs.defaulted[known]
    p_a, p_b = pairs.p_a[known], pairs.p_b[known]
    has_both_classes = 0 < int(y.sum()) < len(y)

    def cost(y_: np.ndarray, p: np.ndarray, threshold: float) -> float:
        return expected_cost(y_, p, threshold, costs.costs)

    def figures(pick: np.ndarray) -> dict[str, float | None]:
        return {"agreement": float(np.mean(same[pick])), "mean_shift": float(np.mean(shift[pick]))}

    def outcome_figures(pick: np.ndarray) -> dict[str, float | None]:
        yy, pa, pb = y[pick], p_a[pick], p_b[pick]
        auc_a, auc_b = roc_auc(yy, pa), roc_auc(yy, pb)
        cost_a, cost_b = cost(yy, pa, pairs.threshold_a), cost(yy, pb, pairs.threshold_b)
        return {
            "auc_a": auc_a,
            "auc_b": auc_b,
            "auc_difference": None if auc_a is None or auc_b is None else auc_b - auc_a,
            "cost_a": cost_a,
            "cost_b": cost_b,
            "cost_difference": cost_b - cost_a,
        }

    whole = figures(np.arange(pairs.n))
    spread = percentile_bootstrap(pairs.n, figures, list(whole), resamples=resamples, seed=seed)
    edges = _histogram_edges(shift)
    counts, _ = np.histogram(shift, bins=edges)
    out.update(
        agreement={"rate": whole["agreement"], "interval": spread["agreement"], "same": int(same.sum())},
        score_shift={
            "mean": whole["mean_shift"],
            "interval": spread["mean_shift"],
            "quantiles": {f"p{round(q * 100):02d}": float(np.quantile(shift, q)) for q in QUANTILES},
            "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
            "higher": int(np.sum(shift > 0)),
            "lower": int(np.sum(shift < 0)),
            "unchanged": int(np.sum(shift == 0)),
        },
        decisions=_decision_confusion(pairs.decision_a, pairs.decision_b),
        interval_method=(
            f"95% percentile bootstrap over {resamples} resamples of these rows, "
            "both models on the same resampled rows (paired)"
        ),
    )
    repaid, defaulted = int((y == 0).sum()), int((y == 1).sum())
    result: dict[str, Any] = {
        "n": int(known.sum()),
        "repaid": repaid,
        "defaulted": defaulted,
        "costs": costs.as_dict(),
    }
    if not len(y):
        result["message"] = (
            f"no outcomes yet among these {pairs.n} decisions: AUC and cost come once outcomes are "
            "recorded (`preauth outcomes import FILE` or POST /v1/decisions/{id}/outcome)"
        )
    else:
        point = outcome_figures(np.arange(len(y)))
        intervals = percentile_bootstrap(
            len(y), outcome_figures, list(point), resamples=resamples, seed=seed + 1
        )
        result.update({key: {"value": value, "interval": intervals[key]} for key, value in point.items()})
        if not has_both_classes:
            result["message"] = (
                f"AUC needs both outcomes among the compared decisions ({repaid} repaid, {defaulted} defaulted)"
            )
    out["outcomes"] = result
    return out


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _histogram_edges(shift: np.ndarray) -> np.ndarray:
    """Bins symmetric around zero, so the bar at zero says "no change" whatever the spread."""
    reach = float(np.max(np.abs(shift))) if len(shift) else 0.0
    reach = max(reach, 1e-3)
    return np.linspace(-reach, reach, HISTOGRAM_BINS + 1)


def _decision_confusion(first: np.ndarray, second: np.ndarray) -> dict[str, dict[str, int]]:
    """Rows: A's decision; columns: B's decision; every verdict present, zeros included."""
    table = {row: dict.fromkeys(VERDICTS, 0) for row in VERDICTS}
    for mine, theirs in zip(first, second, strict=True):
        if mine in table and theirs in table[mine]:
            table[mine][theirs] += 1
    return table


# --------------------------------------------------------------------------------------------
# Presentation


def _number(value: float | None, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _with_interval(block: Mapping[str, Any] | None, key: str = "value", signed: bool = False) -> str:
    if not block or block.get(key) is None:
        return "–"
    interval = block.get("interval")
    shown = _number(block[key], signed=signed)
    if not interval:
        return shown
    return f"{shown} [{_number(interval[0], signed=signed)} – {_number(interval[1], signed=signed)}]"


def comparison_lines(result: Mapping[str, Any]) -> list[str]:
    """The comparison as plain lines (the CLI's table format), a sentence where a figure is missing."""
    a, b = result["a"], result["b"]
    if not result["n"]:
        return [str(result["message"])]
    agreement = result["agreement"]
    shift = result["score_shift"]
    q = shift["quantiles"]
    lines = [
        f"{a} (A) against {b} (B) on {result['n']} decisions scored by both "
        f"({result['a_in_production']} decided by {a}, {result['b_in_production']} by {b})",
        f"thresholds: A {_number(result['thresholds']['a'])}, B {_number(result['thresholds']['b'])}",
        f"agreement (same decision): {_with_interval(agreement, 'rate')} ({agreement['same']} of {result['n']})",
        f"score shift pB − pA: mean {_with_interval(shift, 'mean', signed=True)}; quantiles "
        + ", ".join(f"{k} {_number(v, signed=True)}" for k, v in q.items()),
        "",
        f"decisions (rows: {a}, columns: {b})",
        f"{'':>10}" + "".join(f"{v:>10}" for v in VERDICTS),
    ]
    for row, counts in result["decisions"].items():
        lines.append(f"{row:>10}" + "".join(f"{counts[v]:>10}" for v in VERDICTS))
    lines.append("")
    found = result["outcomes"]
    lines.append(
        f"outcomes: {found['n']} of these decisions ({found['repaid']} repaid, {found['defaulted']} defaulted)"
    )
    if found.get("message"):
        lines.append(str(found["message"]))
    if found["n"]:
        costs = found["costs"]
        lines += [
            f"ROC AUC: A {_with_interval(found.get('auc_a'))}, B {_with_interval(found.get('auc_b'))}, "
            f"B − A {_with_interval(found.get('auc_difference'), signed=True)}",
            f"cost per applicant (approving a bad applicant {costs['false_negative']:g}, refusing a good one "
            f"{costs['false_positive']:g}; {costs['source']}): A {_with_interval(found.get('cost_a'))}, "
            f"B {_with_interval(found.get('cost_b'))}, B − A {_with_interval(found.get('cost_difference'), signed=True)}",
        ]
    lines.append(f"[intervals: {result['interval_method']}]")
    return lines
