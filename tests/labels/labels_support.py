"""Helpers shared by the labels tests (a module name no other test area uses)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from preauth.applications import Applications, validate

DATA = Path(__file__).resolve().parents[2] / "src" / "preauth" / "data"


def first(applications: Applications, n: int) -> Applications:
    """The first n applications as their own set (all distinct in the bundled data)."""
    table = pd.read_csv(applications.source, dtype=str, keep_default_na=False).head(n)
    return validate(table, source=applications.source)
