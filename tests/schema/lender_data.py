"""A second data set, made here: a lender's file with columns preauth has never seen.

Modelled on the 4,454-row credit-scoring file of the issue (Status, Seniority, Home, Time, Age,
Marital, Records, Job as text, Expenses, Income, Assets, Debt, Amount, Price), plus an ordered
``Savings`` column whose missing value means "no account". The outcome follows the columns, so a
model trained on it has something real to learn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = [
    "Ref", "Status", "Seniority", "Home", "Time", "Age", "Marital", "Records", "Job",
    "Expenses", "Income", "Assets", "Debt", "Amount", "Price", "Savings",
]  # fmt: skip


def lender_frame(rows: int = 600, seed: int = 3, *, status: tuple[str, str] = ("2", "1")) -> pd.DataFrame:
    """``status`` is (bad, good): ``("2", "1")`` numeric-coded, ``("bad", "good")`` text-coded."""
    rng = np.random.default_rng(seed)
    seniority = rng.integers(0, 40, rows)
    time = rng.choice([12, 24, 36, 48, 60], rows)
    age = rng.integers(18, 70, rows)
    income = rng.normal(130, 50, rows).clip(20, 500).round()
    amount = rng.normal(1000, 400, rows).clip(100, 5000).round()
    price = (amount * rng.uniform(1.0, 1.8, rows)).round()
    records = rng.choice(["no", "yes"], rows, p=[0.8, 0.2])
    job = rng.choice(["fixed", "freelance", "partime", "others"], rows, p=[0.6, 0.2, 0.15, 0.05])
    savings = rng.choice(["none", "low", "medium", "high", ""], rows, p=[0.2, 0.3, 0.2, 0.1, 0.2])
    score = (
        -0.05 * seniority
        + 0.02 * time
        - 0.01 * income
        + 0.0015 * amount
        + 1.2 * (records == "yes")
        + 0.8 * (job == "partime")
        - 0.4 * np.isin(savings, ["medium", "high"])
        + rng.normal(0, 0.7, rows)
    )
    bad = score > np.quantile(score, 0.7)
    frame = pd.DataFrame(
        {
            "Ref": [f"L{1000 + i}" for i in range(rows)],
            "Status": np.where(bad, status[0], status[1]),
            "Seniority": seniority,
            "Home": rng.choice(["rent", "owner", "parents", "priv", "other"], rows),
            "Time": time,
            "Age": age,
            "Marital": rng.choice(["single", "married", "widow", "separated", "divorced"], rows),
            "Records": records,
            "Job": job,
            "Expenses": rng.integers(35, 180, rows),
            "Income": income.astype(int).astype(str),
            "Assets": rng.integers(0, 20000, rows),
            "Debt": rng.integers(0, 3000, rows),
            "Amount": amount.astype(int),
            "Price": price.astype(int),
            "Savings": savings,
        }
    )
    frame.loc[rng.choice(rows, rows // 20, replace=False), "Income"] = ""  # not declared
    return frame[COLUMNS]


def write_lender_csv(path: Path, rows: int = 600, seed: int = 3, **options: tuple[str, str]) -> Path:
    lender_frame(rows, seed, **options).to_csv(path, index=False)
    return path
