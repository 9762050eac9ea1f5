"""Scoring files across a Dask cluster: a laptop's cores (``local[:N]``) or a running scheduler.

The files are cut into pieces on the client (CSV at line ends, Parquet by row groups), each piece
becomes one task, and every task runs the same functions as ``preauth predict`` on one machine:
read the piece into text cells, :func:`.applications.validate`, :func:`.scoring.score`, write its
part of the results (:func:`.results.write_results`). The client learns only counts and rejects, so
it never holds the data. Rejected rows are renumbered by the client, which knows how many rows the
pieces before each one held: a reject names its row in the whole file, as on one machine.

The workers read the inputs and write the parts at the paths the client gives: on a cluster of
several machines, those paths must be on storage every worker sees (NFS, a shared volume).
Results go to a directory that appears under its final name only when every part is in.
"""

from __future__ import annotations

import glob
import io
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from .applications import GERMAN, OnUnknown, Reject, Schema, validate
from .applications.batches import BATCH_ROWS, chunk_cuts
from .applications.cells import parquet_cells
from .applications.reading import check_header, csv_layout, file_kind, parse_csv
from .boosters import xgboost
from .bundles import Bundle, not_scored
from .errors import ConfigurationError, InputError
from .files import staging_directory
from .rejects import RejectsFile
from .scoring import OutputFormat, score

PART_FORMATS: tuple[str, ...] = ("parquet", "jsonl", "csv")
"""A partitioned result is a directory of files of one of these; the JSON array has no parts."""


@dataclass(frozen=True)
class Piece:
    """Consecutive rows of one file: a CSV byte range or a run of Parquet row groups."""

    path: str
    number: int
    kind: str
    start: int = 0
    end: int = 0
    header: tuple[str, ...] = ()
    delimiter: str = ","
    row_groups: tuple[int, ...] = ()
    version: tuple[int, int] = (0, 0)
    """The file's size and modification time when it was cut: the cuts hold for that file only."""


@dataclass
class PieceResult:
    """What one task sends back: its rows, its decisions, its rejects (numbered within the piece)."""

    rows: int
    scored: int
    bad: int
    rejects: list[Reject]
    failure: NotScored | None = None
    """Set when the model could not score the piece's rows: the job fails with one line naming them."""
    rejects_file: str | None = None
    """Where the worker wrote this piece's rejects (``rejects`` then holds none): with many, the
    client reads them back one at a time instead of receiving them all at once."""


SENT_REJECTS = 100
"""Rejects a piece sends back with its counts; more go to a file the client streams from."""


@dataclass(frozen=True)
class NotScored:
    """Rows of a piece (numbered within it) the booster raised on, and XGBoost's error."""

    first: int
    last: int
    error: BaseException


@dataclass
class ClusterResults:
    """The partitioned result: its directory, counts, and each file's rejects numbered in that file."""

    path: Path
    scored: int = 0
    bad: int = 0
    parts: int = 0
    rejects: dict[str, list[Reject]] = field(default_factory=dict)
    """Each file's rejects: all of them, or with ``rejects_names`` the first :data:`.rejects.KEPT`."""
    rejected: dict[str, int] = field(default_factory=dict)
    """How many rows of each file were rejected."""
    rejects_paths: dict[str, Path] = field(default_factory=dict)
    """Each file's rejects file, when ``rejects_names`` named one."""


# --------------------------------------------------------------------------------------------
# Connecting


@contextmanager
def connect(spec: str) -> Iterator[Any]:
    """A Dask client for ``local``, ``local:N`` (N worker processes here) or ``tcp://HOST:PORT``."""
    from distributed import Client, LocalCluster

    if spec == "local" or spec.startswith("local:"):
        workers_text = spec.partition(":")[2]
        cores = os.cpu_count() or 1
        if workers_text and not (
            workers_text.isdigit() and 0 < int(workers_text) <= WORKERS_PER_CORE * cores
        ):
            raise ConfigurationError(
                f"--dask {spec}: the number of workers must be a whole number from 1 to "
                f"{WORKERS_PER_CORE * cores} ({WORKERS_PER_CORE} per core; this machine has {cores})"
            )
        workers = int(workers_text) if workers_text else cores
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # Without a dashboard the scheduler still serves HTTP (health, metrics), on 8787
                # unless told: a second run at once found it taken and warned on stderr
                # ("Perhaps you already have a cluster running?"). A free port, on this host only.
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
    elif spec.startswith(("tcp://", "tls://")):
        try:
            _scheduler_answers(spec)
            client = Client(spec, timeout=SCHEDULER_TIMEOUT)
        except (OSError, ValueError, TypeError) as error:  # Dask's words for an address or TLS it refuses
            raise ConfigurationError(f"--dask {spec}: cannot reach the scheduler ({error})") from None
        with client:
            # A scheduler with no workers takes the tasks and waits for ever (train --dask did,
            # predict gave up after 10 s with "No valid workers found").
            try:
                client.wait_for_workers(1, timeout=SCHEDULER_TIMEOUT)
            except TimeoutError:
                raise ConfigurationError(
                    f"--dask {spec}: the scheduler has no workers (none joined within {SCHEDULER_TIMEOUT} s)"
                ) from None
            yield client
    else:
        raise ConfigurationError(f"--dask {spec}: expected local, local:N or tcp://HOST:PORT")


WORKERS_PER_CORE = 4
"""The most ``local:N`` worker processes per core: each imports preauth and holds its own memory,
and more of them only share the same cores (``local:99999`` would start processes until the
machine gave out)."""

SCHEDULER_TIMEOUT = 10
"""Seconds a scheduler has to accept a connection and answer Dask's handshake."""


def _scheduler_answers(spec: str) -> None:
    """Raise ``OSError`` quickly when no Dask scheduler answers at ``spec``.

    Dask's client retries a refused connection or an unknown host until its timeout, and waits for
    ever on a port that accepts and says nothing (its handshake read has no timeout): a mistyped
    address would hang the command. One plain connection says at once whether anything listens,
    and the handshake is then given :data:`SCHEDULER_TIMEOUT` seconds.
    """
    import asyncio
    import socket
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect as dask_connect
    from distributed.comm.addressing import get_address_host_port
    from distributed.security import Security

    socket.create_connection(get_address_host_port(spec), timeout=SCHEDULER_TIMEOUT).close()

    async def handshake() -> None:
        arguments = Security().get_connection_args("client")
        comm = await asyncio.wait_for(dask_connect(spec, SCHEDULER_TIMEOUT, **arguments), SCHEDULER_TIMEOUT)
        await comm.close()

    # On an event loop of its own, in a thread of its own: a caller already inside one (a
    # notebook, a test run after one that left its loop running) cannot asyncio.run here.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="preauth-handshake") as pool:
        try:
            pool.submit(asyncio.run, handshake()).result()
        except TimeoutError:
            raise TimeoutError(f"no Dask handshake within {SCHEDULER_TIMEOUT} s") from None


# --------------------------------------------------------------------------------------------
# Planning


def input_files(source: str) -> list[Path]:
    """A file, the CSV and Parquet files of a directory, or those a glob pattern matches; in name order."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in {".csv", ".parquet", ".pq"})
    elif any(c in source for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(source) if not Path(p).is_dir())
    else:
        files = [path]
    if not files:
        raise InputError("no CSV or Parquet files here", source=source)
    for file in files:
        if file_kind(file) == "json":
            raise InputError(
                "--dask reads CSV and Parquet files; JSON is read without --dask", source=str(file)
            )
    return files


def plan(files: Iterable[Path], batch_rows: int = BATCH_ROWS, schema: Schema = GERMAN) -> list[Piece]:
    """Cut the files into pieces of about ``batch_rows`` rows, numbered in order across files.

    A piece names its file by its absolute path: a worker opens it from its own working directory,
    which need not be this one (a scheduler and workers started elsewhere).
    """
    pieces: list[Piece] = []
    for given in files:
        path = given.absolute()
        version = file_version(path)  # before the cuts: a change while they are made is seen too
        cut = (
            _parquet_pieces(path, batch_rows, schema)
            if file_kind(path) == "parquet"
            else _csv_pieces(path, batch_rows, schema)
        )
        pieces.extend([replace(p, number=len(pieces) + i, version=version) for i, p in enumerate(cut)])
    return pieces


def file_version(path: Path) -> tuple[int, int]:
    """A file's size and modification time (ns): what tells a worker the file is the one that was cut."""
    status = path.stat()
    return status.st_size, status.st_mtime_ns


def _csv_pieces(path: Path, batch_rows: int, schema: Schema) -> list[Piece]:
    """Byte ranges ending at every ``batch_rows``-th row end: the same cuts as ``predict`` makes on
    one machine (:func:`.applications.batches.chunk_cuts`), so a value holding a newline is never cut."""
    delimiter, header, start = csv_layout(path, schema)
    size = path.stat().st_size
    bounds = [start]
    with path.open("rb") as handle:
        handle.seek(start)
        offset = start
        for chunk, cuts in chunk_cuts(handle, batch_rows, 1 << 24, quoted=True):
            bounds.extend(offset + cut for cut in cuts)
            offset += len(chunk)
    if bounds[-1] < size:
        bounds.append(size)
    pieces = [
        Piece(str(path), 0, "csv", a, b, tuple(header), delimiter)
        for a, b in zip(bounds, bounds[1:], strict=False)
        if b > a
    ]
    # A file of no rows is a piece of none (as a Parquet file of no row groups is): refused as
    # header-only by the job, as on one machine, instead of disappearing from it.
    return pieces or [Piece(str(path), 0, "csv", start, start, tuple(header), delimiter)]


def _parquet_pieces(path: Path, batch_rows: int, schema: Schema) -> list[Piece]:
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(path).metadata
    except Exception as error:  # pyarrow raises several unrelated types for a broken file
        raise InputError(f"not a readable Parquet file ({error})", source=str(path)) from None
    check_header(metadata.schema.to_arrow_schema().names, str(path), schema)
    pieces: list[Piece] = []
    groups: list[int] = []
    rows = 0
    for group in range(metadata.num_row_groups):
        groups.append(group)
        rows += metadata.row_group(group).num_rows
        if rows >= batch_rows:
            pieces.append(Piece(str(path), 0, "parquet", row_groups=tuple(groups)))
            groups, rows = [], 0
    if groups or not pieces:
        pieces.append(Piece(str(path), 0, "parquet", row_groups=tuple(groups)))
    return pieces


# --------------------------------------------------------------------------------------------
# One task


def read_piece(piece: Piece) -> Any:
    """The piece's rows as text cells, as :func:`.applications.read_table` would give them.

    The cuts were made in the file as it was then: in a file rewritten, truncated or grown since,
    they would cut rows apart or leave rows out without a word, so such a file is refused.
    """
    path = Path(piece.path)
    if file_version(path) != piece.version:
        raise InputError("the file changed after it was cut into pieces; run again", source=piece.path)
    if piece.kind == "parquet":
        import pyarrow.parquet as pq

        return parquet_cells(pq.ParquetFile(path).read_row_groups(list(piece.row_groups)))
    if piece.end == piece.start:
        return pd.DataFrame(columns=list(piece.header))
    with path.open("rb") as handle:
        handle.seek(piece.start)
        block = handle.read(piece.end - piece.start)
    return parse_csv(io.BytesIO(block), list(piece.header), piece.delimiter, path=path, skip_rows=0)


def score_piece(
    piece: Piece,
    bundle: Bundle,
    directory: str,
    fmt: OutputFormat,
    explain: bool,
    on_unknown: OnUnknown,
    required: list[str] | None,
    timestamp: str,
    direct_writes: bool = True,
    rejects_directory: str | None = None,
) -> PieceResult:
    """Read, validate, score and write one piece (this runs on a worker)."""
    from .results import write_results

    table = read_piece(piece)
    if not len(table):
        return PieceResult(0, 0, 0, [])
    applications = validate(
        table, source=piece.path, on_unknown=on_unknown, required=required, schema=bundle.schema
    )
    rejects, rejects_file = _sent_rejects(applications.rejects, piece, rejects_directory)
    if not len(applications):
        return PieceResult(len(table), 0, 0, rejects, rejects_file=rejects_file)
    try:
        scored = score(bundle, applications, explain=explain)
    except xgboost().core.XGBoostError as error:  # sent back, so the job can number the rows in the file
        rows = applications.frame.index
        failure = NotScored(int(rows[0]), int(rows[-1]), error)
        return PieceResult(len(table), 0, 0, rejects, failure, rejects_file)
    scored.timestamp = timestamp
    write_results(
        scored, Path(directory) / f"part-{piece.number:05d}.{fmt}", fmt, direct_writes=direct_writes
    )
    return PieceResult(len(table), len(scored), int(scored.is_bad.sum()), rejects, rejects_file=rejects_file)


def _sent_rejects(
    rejects: list[Reject], piece: Piece, directory: str | None
) -> tuple[list[Reject], str | None]:
    """A piece's rejects to send back, or, past :data:`SENT_REJECTS` (and with a directory for
    them), none and the file they were written to: one line each, ``[row, column, value, reason]``."""
    if directory is None or len(rejects) <= SENT_REJECTS:
        return rejects, None
    path = Path(directory) / f"rejects-{piece.number:05d}.jsonl"
    with path.open("wb") as handle:
        for r in rejects:
            handle.write(orjson.dumps([r.row, r.column, r.value, r.reason]) + b"\n")
    return [], str(path)


def _piece_rejects(result: PieceResult) -> Iterator[Reject]:
    """A piece's rejects, sent back or read back from its file a line at a time."""
    if result.rejects_file is None:
        yield from result.rejects
        return
    with open(result.rejects_file, "rb") as handle:
        for line in handle:
            row, column, value, reason = orjson.loads(line)
            yield Reject(row, column, value, reason)


# --------------------------------------------------------------------------------------------
# The whole job


def score_on_cluster(
    client: Any,
    bundle: Bundle,
    files: list[Path],
    path: Path,
    fmt: OutputFormat,
    *,
    explain: bool = False,
    on_unknown: OnUnknown = "error",
    required: Iterable[str] | None = None,
    batch_rows: int = BATCH_ROWS,
    timestamp: str | None = None,
    direct_writes: bool = True,
    rejects_names: Callable[[str], Path] | None = None,
) -> ClusterResults:
    """Score ``files`` on the cluster into the directory ``path`` (renamed into place when complete).

    With ``rejects_names`` each input file's rejects are written to the file it names, streamed
    from what the workers wrote (the client holds the first :data:`.rejects.KEPT` of each);
    without, they are all returned.
    """
    from datetime import datetime

    if fmt not in PART_FORMATS:
        raise ConfigurationError(f"--dask writes a directory of {', '.join(PART_FORMATS)} parts, not {fmt}")
    pieces = plan(files, batch_rows)
    # Named like every partial file: a run killed with -9 leaves it for the next run to remove.
    work = staging_directory(path.parent, path.name)
    held = staging_directory(path.parent, f"{path.name}.rejects") if rejects_names else None
    results: ClusterResults | None = None
    try:
        shared = client.scatter(bundle, broadcast=True)
        futures = client.map(
            score_piece,
            pieces,
            bundle=shared,
            directory=str(work.absolute()),  # the workers' working directory is theirs
            fmt=fmt,
            explain=explain,
            on_unknown=on_unknown,
            required=None if required is None else sorted(required),
            timestamp=timestamp or datetime.now().isoformat(),
            direct_writes=direct_writes,
            rejects_directory=None if held is None else str(held.absolute()),
            pure=False,
        )
        done: list[PieceResult] = client.gather(futures)
        results = _collect(path, pieces, done, bundle.version)
        if rejects_names is not None:
            _write_rejects(results, pieces, done, rejects_names)
        os.chmod(work, 0o755)
        os.replace(work, path)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        for written in results.rejects_paths.values() if results is not None else ():
            written.unlink(missing_ok=True)  # rejects of results that never appeared
        raise
    finally:
        if held is not None:
            shutil.rmtree(held, ignore_errors=True)
    return results


def _write_rejects(
    results: ClusterResults, pieces: list[Piece], done: list[PieceResult], names: Callable[[str], Path]
) -> None:
    """Each input file's rejects file, its pieces' rejects in order, numbered in the whole file."""
    by_file: dict[str, list[tuple[PieceResult, int]]] = {}
    before: dict[str, int] = {}
    for piece, result in zip(pieces, done, strict=True):
        by_file.setdefault(piece.path, []).append((result, before.get(piece.path, 0)))
        before[piece.path] = before.get(piece.path, 0) + result.rows
    for file, parts in by_file.items():
        if not any(result.rejects or result.rejects_file for result, _ in parts):
            continue
        with RejectsFile(names(file), file) as written:
            for result, rows_before in parts:
                written.add(replace(r, row=r.row + rows_before) for r in _piece_rejects(result))
        results.rejects[file], results.rejected[file] = written.first, written.count
        results.rejects_paths[file] = written.path


def _collect(path: Path, pieces: list[Piece], done: list[PieceResult], version: str) -> ClusterResults:
    """Add up the pieces; number each reject, and the first rows the model could not score, in
    their whole file."""
    results = ClusterResults(path)
    rows_before: dict[str, int] = {}
    for piece, result in zip(pieces, done, strict=True):
        before = rows_before.get(piece.path, 0)
        rows_before[piece.path] = before + result.rows
        if (failed := result.failure) is not None:
            raise not_scored(version, piece.path, failed.first + before, failed.last + before, failed.error)
        results.scored += result.scored
        results.bad += result.bad
        results.parts += result.scored > 0
        if result.rejects:
            results.rejects.setdefault(piece.path, []).extend(
                replace(r, row=r.row + before) for r in result.rejects
            )
            results.rejected[piece.path] = len(results.rejects[piece.path])
    for source, rows in rows_before.items():
        if rows == 0:
            raise InputError("no applications (header only)", source=source)
    return results
