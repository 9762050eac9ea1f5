"""Drawing for the report: matplotlib figures as inline SVG, and values as short text."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

POSITIVE_COLOR, NEGATIVE_COLOR, ACCENT = "#c0392b", "#2e86c1", "#6c3483"
"""Bad risk, good risk, and neutral bars."""


def svg(
    name: str,
    draw: Callable[..., None],
    *,
    width: float = 5.2,
    height: float = 3.6,
    ncols: int = 1,
    nrows: int = 1,
) -> str:
    """Draw a figure and return it as inline SVG; no pyplot, so no global state and no GUI backend.

    The hash salt makes element ids unique per figure: several SVGs share one HTML document.
    """
    import matplotlib
    from matplotlib.figure import Figure

    style: dict[str, Any] = {
        "svg.fonttype": "none",
        "svg.hashsalt": name,
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        # Text is drawn as written: a lender's column "Debt ($) to income ($)" was set as math
        # (its dollars gone), and "Price $^$" failed the report, and with it train, in a traceback.
        "text.parse_math": False,
    }
    with matplotlib.rc_context(style):  # type: ignore[arg-type]
        figure = Figure(figsize=(width, height), layout="constrained")
        draw(figure, figure.subplots(nrows, ncols, squeeze=False))
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def legend_below(figure: Any, handles: Sequence[Any], labels: Sequence[str], *, ncols: int = 1) -> None:
    """The figure's one legend, under its plots: a legend inside the axes hides the curves it names.

    ``outside`` asks the constrained layout to make room for it below the axes.
    """
    figure.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=8, frameon=False)


def key_name(key: str, names: Mapping[str, str]) -> str:
    """A saved key as a reader says it: its name in ``names``, else its words ("n_rounds" -> "N rounds")."""
    return names.get(key) or key.replace("_", " ").capitalize()


def readable(value: Any) -> str:
    """A metadata value as short text: floats to 4 significant digits, small dicts on one line."""
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else f"{float(value):.4g}"
    if isinstance(value, Mapping):
        return " \u00b7 ".join(f"{k} {readable(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(readable(v) for v in value)
    return str(value)
