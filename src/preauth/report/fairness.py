"""Fairness: approval, true and false positive rates by Sex and by age band, with the gaps called out.

Every rate carries its 95% Wilson interval: on a 200-row holdout a group of 30 moves its approval
rate by ±17 points by chance alone, so a gap without intervals invites reading noise. Groups
smaller than :data:`MIN_GROUP` are shown but marked too small to judge and left out of the gaps.
The four-fifths ratio (lowest approval rate over highest) comes with a bootstrap interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..applications import GERMAN, Schema, normalize_name
from .figures import NEGATIVE_COLOR, svg
from .targets import Target

AGE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("<25", 0, 25),
    ("25\u201340", 25, 40),
    ("40\u201360", 40, 60),
    ("60+", 60, float("inf")),
)
MIN_GROUP = 20
"""Groups smaller than this are marked too small to judge and left out of the gap call-outs."""
RESAMPLES = 1000


def wilson(successes: int, n: int, z: float = 1.96) -> list[float] | None:
    """The 95% Wilson score interval of a proportion; None without observations."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


def four_fifths(groups: pd.Series, refused: np.ndarray, seed: int = 0) -> dict[str, Any] | None:
    """Lowest over highest approval rate among groups large enough to judge, with a bootstrap interval."""
    values = groups.to_numpy(dtype=object)
    names = [g for g in _group_order(groups) if g is not None and int(np.sum(values == g)) >= MIN_GROUP]
    if len(names) < 2:
        return None

    def ratio(pick: np.ndarray) -> float | None:
        rates = []
        for g in names:
            inside = values[pick] == g
            if not inside.any():
                return None
            rates.append(float(np.mean(~refused[pick][inside])))
        return min(rates) / max(rates) if max(rates) > 0 else None

    point = ratio(np.arange(len(values)))
    rng = np.random.default_rng(seed)
    draws = [
        r for _ in range(RESAMPLES) if (r := ratio(rng.integers(0, len(values), len(values)))) is not None
    ]
    if point is None or not draws:
        return None
    return {
        "ratio": point,
        "interval": [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))],
        "groups": [str(g) for g in names],
    }


def age_band(age: pd.Series) -> pd.Series:
    """The report's age bands: <25, 25–35, 35–50, 50+ (lower bound inclusive)."""
    values = age.to_numpy(dtype=np.float64)
    out = np.full(len(values), None, dtype=object)
    for name, low, high in AGE_BANDS:
        out[(values >= low) & (values < high)] = name
    return pd.Series(out, index=age.index)


def _group_rates(
    groups: pd.Series, refused: np.ndarray, targets: Sequence[Target], holdout: pd.DataFrame
) -> list[dict[str, Any]]:
    rows = []
    known_risk = (
        holdout["risk"].notna().to_numpy() if "risk" in holdout.columns else np.zeros(len(holdout), bool)
    )
    order = [g for g in _group_order(groups) if g is not None]
    for group in order:
        mask = (groups == group).to_numpy()
        row: dict[str, Any] = {
            "group": str(group),
            "n": int(mask.sum()),
            "too_small": int(mask.sum()) < MIN_GROUP,
            "approval": float(np.mean(~refused[mask])),
            "approval_ci": wilson(int(np.sum(~refused[mask])), int(mask.sum())),
        }
        for t in targets:
            sub = mask if t.key == "label" else mask[known_risk]
            r = refused if t.key == "label" else refused[known_risk]
            bad, good = sub & (t.y == 1), sub & (t.y == 0)
            row[f"tpr_{t.key}"] = float(np.mean(r[bad])) if bad.any() else float("nan")
            row[f"fpr_{t.key}"] = float(np.mean(r[good])) if good.any() else float("nan")
            row[f"tpr_{t.key}_ci"] = wilson(int(np.sum(r[bad])), int(bad.sum()))
            row[f"fpr_{t.key}_ci"] = wilson(int(np.sum(r[good])), int(good.sum()))
        rows.append(row)
    return rows


def _group_order(groups: pd.Series) -> list[Any]:
    bands = [b[0] for b in AGE_BANDS]
    present = list(pd.unique(groups.dropna()))
    return [b for b in bands if b in present] if set(present) <= set(bands) else sorted(present)


def gaps(rows: Sequence[Mapping[str, Any]], metrics: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """The largest difference per rate between groups large enough to mean something."""
    sized = [r for r in rows if r["n"] >= MIN_GROUP]
    gaps = []
    for key, label in metrics:
        valid = [r for r in sized if not np.isnan(r[key])]
        if len(valid) < 2:
            continue
        low = min(valid, key=lambda r: r[key])
        high = max(valid, key=lambda r: r[key])
        gap = {
            "metric": label,
            "low": low["group"],
            "low_value": low[key],
            "high": high["group"],
            "high_value": high[key],
            "gap": high[key] - low[key],
        }
        if key == "approval" and high[key] > 0:
            gap["ratio"] = low[key] / high[key]
        gaps.append(gap)
    return sorted(gaps, key=lambda g: -g["gap"])


def section(
    holdout: pd.DataFrame,
    threshold: float,
    targets: Sequence[Target],
    meta: Mapping[str, Any],
    schema: Schema = GERMAN,
) -> dict[str, Any]:
    """Rates by group against every set of labels, an approval chart, and the largest gaps.

    The groups are the schema's protected attributes (German Credit: Sex) and age bands when the
    schema has an age field."""
    refused = holdout["probability"].to_numpy(dtype=np.float64) >= threshold
    metrics = [("approval", "Approval rate")]
    for t in targets:
        metrics += [(f"tpr_{t.key}", f"TPR vs {t.name}"), (f"fpr_{t.key}", f"FPR vs {t.name}")]
    groupings = []
    for name in schema.protected:
        if name in holdout.columns and holdout[name].notna().any():
            groupings.append((name, holdout[name].astype(object).where(holdout[name].notna(), None)))
    age = next((f.name for f in schema.fields if normalize_name(f.name) == "age" and not f.is_category), None)
    if age is not None and age in holdout.columns:
        groupings.append(("Age band", age_band(holdout[age])))
    sections: list[dict[str, Any]] = []
    for title, groups in groupings:
        rows = _group_rates(groups, refused, targets, holdout)
        sections.append(
            {
                "title": title,
                "rows": rows,
                "gaps": gaps(rows, metrics),
                "four_fifths": four_fifths(groups, refused),
            }
        )
    # The approval gap of each grouping always, then its largest TPR/FPR gaps.
    largest: list[dict[str, Any]] = []
    for section in sections:
        approval = [g for g in section["gaps"] if g["metric"] == "Approval rate"]
        others = [g for g in section["gaps"] if g["metric"] != "Approval rate"][:2]
        largest += [dict(g, grouping=section["title"]) for g in approval + others]

    def chart(_f: Any, ax: Any) -> None:
        for j, section in enumerate(sections):
            a = ax[0, j]
            names = [r["group"] for r in section["rows"]]
            a.bar(names, [r["approval"] for r in section["rows"]], color=NEGATIVE_COLOR)
            for x, r in enumerate(section["rows"]):
                a.annotate(
                    f"{100 * r['approval']:.0f}%\nn={r['n']}",
                    (x, r["approval"]),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
            a.set(title=f"Approval rate by {section['title']}", ylim=(0, 1.2), ylabel="Share approved")

    features = list(meta.get("features") or [])
    return {
        "sections": sections,
        "metrics": metrics,
        "largest": largest,
        "chart": svg("fairness", chart, ncols=max(1, len(sections)), width=4.5 * max(1, len(sections)))
        if sections
        else "",
        "sex_in_model": any(name in features for name in schema.protected),
        "protected": ", ".join(schema.protected),
        "protected_in_model": ", ".join(name for name in schema.protected if name in features),
        "min_group": MIN_GROUP,
    }


# --------------------------------------------------------------------------------------------
# Label provenance
