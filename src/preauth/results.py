"""Scoring a file batch by batch into a results file, so that memory does not grow with the file.

``preauth predict`` reads a batch (:mod:`.applications.batches`), validates, scores and appends
it to the results file, then forgets it. The file is written under a temporary name and renamed
into place only when the last batch is in (:func:`.files.atomic_path`): an error in batch 900
or a Ctrl-C leaves no results file at all, never a partial one.

Each format has one writer (:data:`_WRITERS`), which predict gives batch after batch and
:func:`write_results` a whole result set as one batch (``preauth run``, a part of ``predict
--dask``): one piece of code makes a format's bytes, and one timestamp holds for a run. The JSON
array is written as ``[``, the objects, ``]``; a result set of up to :data:`SMALL` objects is
indented like the original's file, so the first ``SMALL`` results are held back until it is known
which of the two the file is. Rejected rows go to a rejects file as they come (:mod:`.rejects`),
or, when none is named, are kept and returned.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from .applications import Applications, OnUnknown, Reject
from .applications.batches import BATCH_ROWS, iter_applications
from .boosters import xgboost
from .bundles import Bundle, not_scored
from .errors import ConfigurationError
from .files import DirectFile, atomic_path, naming, spreadsheet_safe_column
from .formats import FORMATS, OutputFormat
from .rejects import RejectsFile
from .scoring import Scored, json_items, result_objects, result_table, score, write_json_lines


@dataclass
class FileResults:
    """What scoring a file produced: counts for the summary line, and the rejected rows."""

    path: Path
    scored: int = 0
    bad: int = 0
    rejects: list[Reject] = field(default_factory=list)
    """The rejected rows; with a rejects file, only the first :data:`.rejects.KEPT` (the file has all)."""
    batches: int = 0
    rejected: int = 0
    """How many rows were rejected in all."""
    rejects_path: Path | None = None
    """The rejects file, when one was asked for and something was rejected."""


def score_file(
    bundle: Bundle,
    source: Path,
    path: Path,
    fmt: OutputFormat,
    *,
    explain: bool = False,
    on_unknown: OnUnknown = "error",
    required: Iterable[str] | None = None,
    batch_rows: int = BATCH_ROWS,
    timestamp: str | None = None,
    direct_writes: bool = True,
    rejects_path: Path | None = None,
) -> FileResults:
    """Score ``source`` batch by batch into ``path`` (renamed into place when complete).

    Every result carries one ``timestamp`` (ISO 8601; by default when scoring started). JSON Lines
    and JSON go around the page cache unless ``direct_writes`` is off (:class:`.files.DirectFile`).
    With ``rejects_path`` the rejected rows are written there as they come (:class:`.rejects.
    RejectsFile`, complete or not at all) and only the first are kept; without it all are kept.
    """
    _check_format(fmt)
    results = FileResults(path)
    timestamp = timestamp or datetime.now().isoformat()
    batches = iter_applications(
        source, batch_rows=batch_rows, on_unknown=on_unknown, required=required, schema=bundle.schema
    )

    def score_batch(applications: Applications) -> Scored:
        try:
            scored = score(bundle, applications, explain=explain)
        except xgboost().core.XGBoostError as error:
            rows = applications.frame.index
            raise not_scored(bundle.version, str(source), rows[0], rows[-1], error) from None
        scored.timestamp = timestamp
        return scored

    failed = threading.Event()

    def write_batch(scoring: Future[Scored]) -> None:
        if failed.is_set():
            return  # a batch before this one failed: nothing more goes into the file
        try:
            scored = scoring.result()  # an error in scoring surfaces here, and so in the main thread
            with naming(path):
                writer.write(scored)
        except BaseException:
            failed.set()
            raise
        results.scored += len(scored)
        results.bad += int(scored.is_bad.sum())

    # Three stages: this thread reads and validates batch k+2 while a second one scores batch k+1
    # and a third writes batch k (XGBoost and Arrow's readers and writers release the GIL,
    # so the stages share the cores: writing no longer waits for scoring, nor scoring for writing).
    # Each later stage is one thread, so batches are scored and written in order; at most QUEUED
    # batches wait, so memory stays bounded. The writer is closed only once both threads stopped:
    # after an error too, so that nothing writes to the file once it is gone, but what that close
    # raises (a JSON array's end on a full disk) is not what the user is told; the first error is.
    # The rejects file is outermost: written complete only once the results file is.
    rejects_file = RejectsFile(rejects_path, str(source)) if rejects_path is not None else None
    with (
        rejects_file or contextlib.nullcontext(),
        atomic_path(path) as tmp,
        _opened(tmp, fmt, direct_writes) as handle,
    ):
        writer = _WRITERS[fmt](handle)
        scorer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preauth-score")
        writing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preauth-write")
        scores: deque[Future[Scored]] = deque()
        pending: deque[Future[None]] = deque()
        complete = False
        try:
            for applications in batches:
                if rejects_file is None:
                    results.rejects.extend(applications.rejects)
                else:
                    rejects_file.add(applications.rejects)
                results.batches += 1
                if not len(applications):
                    continue
                scores.append(scorer.submit(score_batch, applications))
                pending.append(writing.submit(write_batch, scores[-1]))
                while len(pending) > QUEUED:
                    pending.popleft().result()  # an error in a later stage surfaces here
                    scores.popleft()
            while pending:
                pending.popleft().result()
            complete = True
        finally:
            for written in pending:
                written.cancel()
            for scored in scores:
                scored.cancel()
            scorer.shutdown(wait=True)
            writing.shutdown(wait=True)
            try:
                if complete:
                    with naming(path):
                        writer.close()
                        handle.close()
                else:
                    with contextlib.suppress(Exception):
                        writer.close()
            finally:
                with contextlib.suppress(OSError):
                    handle.close()  # closed already, or after an error: a full disk's buffer goes with the file
    if rejects_file is not None:
        results.rejects, results.rejected = rejects_file.first, rejects_file.count
        results.rejects_path = rejects_path if rejects_file.count else None
    else:
        results.rejected = len(results.rejects)
    return results


QUEUED = 2
"""Batches read and validated ahead of the one being written (scored, or waiting to be)."""

DIRECT_FORMATS = ("jsonl", "json")
"""Formats written around the page cache (:class:`.files.DirectFile`): the text formats whose bytes
preauth writes itself (Arrow's Parquet and CSV writers want a file they can seek or flush)."""


def _check_format(fmt: str) -> None:
    """Refuse an unknown format before any file is opened (library callers pass any string)."""
    if fmt not in FORMATS:
        raise ConfigurationError(f"unknown output format '{fmt}'; choose one of: {', '.join(FORMATS)}")


def _opened(path: Path, fmt: str, direct_writes: bool) -> IO[bytes] | DirectFile:
    return DirectFile(path, direct=direct_writes) if fmt in DIRECT_FORMATS else path.open("w+b")


class _Writer:
    """Appends scored batches to an open file; ``close`` finishes the file (it does not close it)."""

    def __init__(self, handle: IO[bytes] | DirectFile) -> None:
        self.handle = handle

    def write(self, scored: Scored) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _JsonLines(_Writer):
    def write(self, scored: Scored) -> None:
        write_json_lines(scored, self.handle)


class _Csv(_Writer):
    """CSV, made for spreadsheets: a text cell that would run as a formula (an applicant's
    ``=cmd|...`` kept with ``--on-unknown unknown``, an id) gets a leading ``'``, as in the rejects
    file and the decisions export (:func:`.files.spreadsheet_safe`)."""

    header = True

    def write(self, scored: Scored) -> None:
        from pyarrow import csv as pacsv

        table = result_table(scored, nested=False)
        safe = table.from_arrays([spreadsheet_safe_column(c) for c in table.columns], schema=table.schema)
        options = pacsv.WriteOptions(include_header=self.header)
        pacsv.write_csv(safe, self.handle, write_options=options)
        self.header = False


class _Parquet(_Writer):
    """Row groups appended to one file; its schema is the first batch's, widened when a later batch
    needs it (an amount with cents after a batch of whole amounts), by copying what is written so far."""

    handle: IO[bytes]  # a file it can seek and read back (see _opened)
    writer: Any = None

    def write(self, scored: Scored) -> None:
        import pyarrow as pa

        table = result_table(scored, nested=True)
        if self.writer is None:
            self._open(table.schema)
        elif table.schema != self.writer.schema:
            wider = pa.unify_schemas([self.writer.schema, table.schema], promote_options="permissive")
            if wider != self.writer.schema:
                self._widen(wider)
            table = table.cast(wider)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def _open(self, schema: Any) -> None:
        import pyarrow.parquet as pq

        self.writer = pq.ParquetWriter(self.handle, schema)

    def _widen(self, schema: Any) -> None:
        import shutil
        import tempfile

        import pyarrow.parquet as pq

        self.writer.close()
        with tempfile.TemporaryFile(dir=Path(str(self.handle.name)).parent) as written:
            self.handle.flush()
            self.handle.seek(0)
            shutil.copyfileobj(self.handle, written)
            self.handle.seek(0)
            self.handle.truncate()
            self._open(schema)
            parquet = pq.ParquetFile(written)
            for group in range(parquet.num_row_groups):  # a row group at a time: memory stays bounded
                self.writer.write_table(parquet.read_row_group(group).cast(schema))


SMALL = 10_000
"""Up to this many results, JSON is indented like the original's file; beyond, compact (one line)."""

INDENTED = 1_000
"""Objects indented by orjson in one call: a third of the cost of indenting each on its own, and
a bounded copy even for a batch with reasons (which is indented whatever its size)."""


class _Json(_Writer):
    """``[``, the objects, ``]``: indented for up to SMALL results (or with reasons), else compact."""

    def __init__(self, handle: IO[bytes] | DirectFile) -> None:
        super().__init__(handle)
        self.held: list[Scored] = []
        self.held_rows = 0
        self.compact: bool | None = None  # unknown until more than SMALL results or the end
        self.first = True

    def write(self, scored: Scored) -> None:
        if self.compact is None:
            if scored.reasons is None and self.held_rows + len(scored) <= SMALL:
                self.held.append(scored)
                self.held_rows += len(scored)
                return
            self._decide(compact=scored.reasons is None)
        self._emit(scored)

    def close(self) -> None:
        if self.compact is None:
            self._decide(compact=False)
        self.handle.write(b"[]\n" if self.first else (b"\n]\n" if not self.compact else b"]"))

    def _decide(self, *, compact: bool) -> None:
        self.compact = compact
        held, self.held = self.held, []
        for scored in held:
            self._emit(scored)

    def _emit(self, scored: Scored) -> None:
        if self.compact:
            items = json_items(scored)
            if not items:
                return
            self.handle.write(b"[" if self.first else b",")
            for chunk in items:
                self.handle.write(chunk)
            self.first = False
        else:
            # INDENTED objects at a time as an indented array without its brackets: indented by two
            # and joined by ",\n" as in the whole file, by orjson, not re-indented line by line.
            objects = result_objects(scored)
            for start in range(0, len(objects), INDENTED):
                text = orjson.dumps(objects[start : start + INDENTED], option=orjson.OPT_INDENT_2)
                self.handle.write(b"[\n" if self.first else b",\n")
                self.handle.write(memoryview(text)[2:-2])  # without b"[\n" and b"\n]"
                self.first = False


_WRITERS: dict[str, type[_Writer]] = {"json": _Json, "jsonl": _JsonLines, "parquet": _Parquet, "csv": _Csv}


def write_results(scored: Scored, path: Path, fmt: OutputFormat, *, direct_writes: bool = False) -> Path:
    """A whole result set as a file, atomically: the format's batch writer, given one batch.

    ``preauth run`` and each part of ``predict --dask`` write this way, so their bytes are the ones
    predict writes a batch at a time. How the file is opened is :func:`_opened`'s, as for predict:
    ``direct_writes`` is the setting, which ``predict --dask`` passes on. ``preauth run`` leaves it
    off: the setting is predict's (a large file streamed to a disk), and the run writes once the
    scored sample it holds whole in memory, through the page cache like any small file.
    """
    _check_format(fmt)
    with atomic_path(path) as tmp, naming(path), _opened(tmp, fmt, direct_writes) as handle:
        writer = _WRITERS[fmt](handle)
        try:
            writer.write(scored)
        except BaseException:
            with contextlib.suppress(Exception):
                writer.close()  # what closing raises after an error is not what the user is told
            raise
        writer.close()
    return path
