"""The rejects file: one CSV row per rejected row of an input, with its row, column, value and reason.

Written as the rejects come (:class:`RejectsFile`), not gathered and written at the end: a file
whose every row is bad would otherwise hold every reject in memory (about 700 bytes each: 1.2 GB
of a million-row file), and ``predict`` promises memory that does not grow with the file. Like a
results file it appears under its name only once complete (:func:`.files.atomic_path`), and only
when there was something to reject.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .applications import Reject
from .files import atomic_path, naming, spreadsheet_safe

KEPT = 1000
"""Rejects a :class:`RejectsFile` keeps in memory besides writing them (the first ones, to show)."""

HEADER = ("row", "column", "value", "reason", "message")


class RejectsFile:
    """Rejects of ``source`` written to ``path`` as they come; opened at the first one.

    Values come from the file as given, so a text cell that a spreadsheet would run as a formula
    is written with a leading quote (:func:`.files.spreadsheet_safe`): the file is meant to be
    opened. Use as a context manager: the file is renamed into place when the block succeeds.
    """

    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.source = source
        self.count = 0
        self.first: list[Reject] = []
        self._stack = contextlib.ExitStack()
        self._writer: Any = None

    def add(self, rejects: Iterable[Reject]) -> None:
        with naming(self.path):
            self._add(rejects)

    def _add(self, rejects: Iterable[Reject]) -> None:
        for reject in rejects:
            if self._writer is None:
                tmp = self._stack.enter_context(atomic_path(self.path))
                handle = self._stack.enter_context(tmp.open("w", encoding="utf-8", newline=""))
                self._writer = csv.writer(handle, lineterminator="\n")
                self._writer.writerow(HEADER)
            texts = (reject.column or "", reject.value or "", reject.reason, reject.message(self.source))
            self._writer.writerow((reject.row, *(spreadsheet_safe(t) for t in texts)))
            if len(self.first) < KEPT:
                self.first.append(reject)
            self.count += 1

    def __enter__(self) -> RejectsFile:
        return self

    def __exit__(self, *failure: Any) -> bool | None:
        with naming(self.path):  # the last buffered rows are written as the file closes
            return self._stack.__exit__(*failure)


def write_rejects(rejects: Iterable[Reject], source: str, path: Path) -> Path:
    """All of ``rejects`` to ``path`` at once (the same file :class:`RejectsFile` writes)."""
    with RejectsFile(path, source) as file:
        file.add(rejects)
    return path
