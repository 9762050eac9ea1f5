"""The formats a results file can be written in: a name the CLI can offer without importing the writers."""

from __future__ import annotations

from typing import Literal

OutputFormat = Literal["json", "jsonl", "parquet", "csv"]
FORMATS: tuple[str, ...] = ("json", "jsonl", "parquet", "csv")
