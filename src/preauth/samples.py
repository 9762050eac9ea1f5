"""Sample files: application objects turned into a CSV that ``preauth predict`` accepts.

The original pipeline had a small ``create_sample`` tool for this; results files can be fed back
too, since each result carries its application under ``input_data``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .applications import GERMAN, Applications, Schema, read_applications
from .files import atomic_path


def write_prepared(applications: Applications, path: Path, *, with_id: bool = True) -> Path:
    """The validated rows under canonical names (``unknown`` filled in), with ``Risk`` if present."""
    frame = applications.frame.copy()
    if with_id:
        frame.insert(0, "id", applications.ids.to_numpy())
    frame = frame.loc[:, [c for c in frame.columns if frame[c].notna().any() or c == "id"]]
    for name in frame.columns:
        if pd.api.types.is_float_dtype(frame[name]) and (frame[name].dropna() % 1 == 0).all():
            # Whole numbers stay whole; a number the schema lets be missing stays empty (nullable Int64).
            frame[name] = frame[name].astype("int64" if frame[name].notna().all() else "Int64")
    with atomic_path(path) as tmp:
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
    return path


def write_sample(source: Path, path: Path, schema: Schema = GERMAN) -> tuple[Path, Applications]:
    """Applications from a JSON file (object, array, JSON Lines or results file) written as CSV.

    The CSV keeps the user's column names and leaves missing balances empty, exactly like the
    original tool's ``sample_transactions.csv``.
    """
    applications = read_applications(source, schema=schema)
    with atomic_path(path) as tmp:
        applications.given.to_csv(tmp, index=False)
    return path, applications
