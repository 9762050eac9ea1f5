"""Writing files so that no reader ever sees half of one, and cleaning up after writers that died.

Every file preauth writes (results, rejects, labels, bundles, reports) goes to a temporary name in
the same directory and is renamed into place only when complete: a crash, a full disk or a kill
leaves the previous file or none, never a truncated one.

A ``kill -9`` leaves the temporary file itself behind (results of a million rows are over 100 MB).
Its name says which process wrote it (``.<name>.<pid>@<host>.<random>.part``), so the next writer
in that directory removes the ones whose process on this host is gone, and only those: a live
writer's file, another host's on a shared disk, or a file preauth did not name is never touched.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FILE_MODE = 0o644
"""Readable by others: results and bundles are meant to be served and shared (mkstemp gives 0600)."""

PARTIAL_SUFFIX = ".part"
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:63] or "host"
_PARTIAL = re.compile(r"^\..+\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]+)\.[^.]+\.part$")


def partial_prefix(name: str) -> str:
    """The start of a partial file's name: hidden, then the final name, this process and host."""
    return f".{name}.{os.getpid()}@{_HOST}."


def make_directory(path: Path) -> None:
    """``mkdir -p``, saying which part of the path is a file when one is in the way.

    Python's own error names the whole path with "File exists" (or "Not a directory"), which
    reads as if the file to be written were already there."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), path)
        raise NotADirectoryError(
            errno.ENOTDIR, "is a file, not a directory: nothing can be written in it", str(blocking)
        ) from None


def check_file_target(path: Path) -> None:
    """Raise the error writing a file at ``path`` would end with, before any work is done for it.

    A command that spends minutes (or paid LLM calls) before it writes should refuse an output it
    can never write at the start: a folder, a pipe, ``-``, or a path through a file."""
    if str(path) == "-":
        # Elsewhere ``-`` is standard output: a file of that name would leave the pipe empty.
        raise OSError(errno.EINVAL, "not standard output here; name a file to write", str(path))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder; name a file to write", str(path))
    if path.exists() and not path.is_file():
        # The rename would put a regular file in place of a pipe or a device (/dev/null, as root).
        raise OSError(errno.EINVAL, "not a regular file; name a file to write", str(path))
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise NotADirectoryError(
            errno.ENOTDIR, "is a file, not a directory: nothing can be written in it", str(blocking)
        )


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that is renamed onto it only when the block succeeds."""
    check_file_target(path)
    make_directory(path.parent)
    remove_stale_partials(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=partial_prefix(path.name), suffix=PARTIAL_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """An OSError while writing ``path`` (a full disk, a size limit) names it: the system's own
    errors name no file, and some writers (Arrow's, the csv module) raise one with only a message."""
    try:
        yield
    except OSError as error:
        if error.filename is not None:
            raise
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error


def staging_directory(parent: Path, name: str) -> Path:
    """A hidden directory to assemble ``parent/<something>`` in, named and cleaned up like partial files."""
    make_directory(parent)
    remove_stale_partials(parent)
    return Path(tempfile.mkdtemp(prefix=partial_prefix(name), suffix=PARTIAL_SUFFIX, dir=parent))


def write_text_atomic(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


DIRECT_BLOCK = 1 << 23
"""Bytes gathered before each write around the page cache: 8 MiB, a multiple of any block size."""

_ALIGN = 4096
"""What ``O_DIRECT`` asks for: the buffer's address, each write's size and offset, a multiple of it."""

_O_DIRECT = getattr(os, "O_DIRECT", 0)  # Linux (and some BSDs); macOS and Windows have none


class DirectFile:
    """A file written around the page cache (``O_DIRECT``), in large aligned blocks: for results.

    A results file is written once and not read back by this process; through the page cache,
    each of its bytes is first copied by the kernel into a page it allocates for it. On a virtual
    machine whose memory is backed on demand (ours), that allocation is most of the cost: 0.75 s
    of system time per 310 MB (a million JSON Lines results) against 0.02 s written directly, a
    third of what JSON Lines costs beyond Parquet. Here the bytes are gathered into one reused,
    page-aligned buffer (a copy at memory speed) and handed to the disk a block at a time.

    The bytes are the same either way. Where ``O_DIRECT`` is missing (macOS) or refused (some
    file systems), or a write is refused for its alignment, the file is written through the page
    cache from there on, as any other; the unaligned tail always is. The writer waits for the disk
    rather than for the cache: a disk slower than the results come (about 200 MB/s of JSON Lines
    at 10M rows here) sets the pace, as it would anyway once the cache's dirty limit is reached.
    ``direct=False`` (the setting ``direct_writes``) writes the same blocks through the page cache:
    for such a disk, when the machine has the memory to hold the results until they are written.
    """

    def __init__(self, path: Path, *, direct: bool = True) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
        around = _O_DIRECT if direct else 0
        try:
            self._fd = os.open(path, flags | around, FILE_MODE)
            self._direct = bool(around)
        except OSError as error:
            if error.errno != errno.EINVAL:
                raise
            self._fd = os.open(path, flags, FILE_MODE)
            self._direct = False
        self.name = str(path)
        self._buffer = mmap.mmap(-1, DIRECT_BLOCK)  # page-aligned, as O_DIRECT needs
        self._view = memoryview(self._buffer)
        self._filled = 0
        self.closed = False

    def write(self, data: Any) -> int:
        """Append ``data`` (bytes or any buffer: an Arrow buffer is not copied before this)."""
        view = memoryview(data).cast("B")
        start = 0
        while start < len(view):
            size = min(DIRECT_BLOCK - self._filled, len(view) - start)
            self._view[self._filled : self._filled + size] = view[start : start + size]
            self._filled += size
            start += size
            if self._filled == DIRECT_BLOCK:
                self._write(self._view)
                self._filled = 0
        return len(view)

    def flush(self) -> None:
        """Nothing: the gathered bytes go out a whole block at a time, and the rest on ``close``."""

    def close(self) -> None:
        """Write what is gathered (the whole blocks directly, the tail through the page cache), close."""
        if self.closed:
            return
        try:
            whole = self._filled - self._filled % _ALIGN
            self._write(self._view[:whole])
            if self._filled > whole:
                self._through_page_cache()
                self._write(self._view[whole : self._filled])
        finally:
            self.closed = True
            os.close(self._fd)
            self._view.release()
            with contextlib.suppress(BufferError):  # a failed write's traceback holds a view: freed with it
                self._buffer.close()

    def __enter__(self) -> DirectFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, view: memoryview) -> None:
        while len(view):
            try:
                written = os.write(self._fd, view)
            except OSError as error:
                # A file system that takes O_DIRECT files but not this write (its size or offset,
                # after a short write near a file size limit): the rest goes through the page cache.
                if error.errno != errno.EINVAL or not self._direct:
                    raise
                self._through_page_cache()
                continue
            view = view[written:]

    def _through_page_cache(self) -> None:
        if self._direct:
            import fcntl

            fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~_O_DIRECT)
            self._direct = False


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet shows as text, never runs: ``=cmd|...`` becomes ``'=cmd|...``.

    OWASP's advice for CSV injection: prefix a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab
    or a carriage return with a quote. A plain number (``-3``, ``+1e5``) is left alone, readable.
    """
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def spreadsheet_safe_column(column: Any) -> Any:
    """:func:`spreadsheet_safe` over an Arrow column, for the results CSV (applicants' own text).

    Only cells that start like a formula can change, and those are rare: Arrow finds them, and
    they alone go through :func:`spreadsheet_safe` (one rule, one place), so a million-row column
    costs one scan. A dictionary column is made safe in its dictionary; other types pass through.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        return pa.chunked_array([spreadsheet_safe_column(c) for c in column.chunks], type=column.type)
    if pa.types.is_dictionary(column.type):
        return pa.DictionaryArray.from_arrays(column.indices, spreadsheet_safe_column(column.dictionary))
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column
    risky = pc.fill_null(pc.match_substring_regex(column, r"^[=+\-@\t\r]"), False)
    if not pc.any(risky).as_py():
        return column
    cells = pc.filter(column, risky).to_pylist()
    return pc.replace_with_mask(column, risky, pa.array([spreadsheet_safe(c) for c in cells], column.type))


def remove_stale_partials(directory: Path) -> list[Path]:
    """Remove the partial files and staging directories in ``directory`` whose writer has died."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(".") and entry.name.endswith(CLAIM_SUFFIX):
            if _stale_claim(Path(entry.path)):  # a name claimed by a run that was killed
                Path(entry.path).unlink(missing_ok=True)
                removed.append(Path(entry.path))
            continue
        match = _PARTIAL.match(entry.name)
        if match is None or match["host"] != _HOST or _alive(int(match["pid"])):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue  # another run removed it first, or it is not ours to remove after all
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (one we may not signal counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


CLAIM_SUFFIX = ".claim"


@contextmanager
def claimed_name(candidates: Iterator[Path]) -> Iterator[Path]:
    """The first of ``candidates`` that no file holds and no other live writer has claimed, held
    for the block.

    A results file appears under its name only when complete, so two runs that start in the same
    second would both find ``inference_results_<second>.jsonl`` free and the second rename would
    replace the first run's results. A name is claimed by creating ``.<name>.claim`` exclusively
    (atomic on every local file system), holding the claimant's ``pid@host``; a claim whose process
    on this host is gone (``kill -9``) is stale and taken over.
    """
    for path in candidates:
        if path.exists():
            continue
        make_directory(path.parent)
        claim = path.with_name(f".{path.name}{CLAIM_SUFFIX}")
        if not _claim(claim):
            continue
        try:
            if path.exists():  # written between the look and the claim
                continue
            yield path
            return
        finally:
            claim.unlink(missing_ok=True)
    raise RuntimeError("no name left to claim")  # the candidates ran out (they never do)


def _claim(claim: Path) -> bool:
    for _ in range(2):
        try:
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
        except FileExistsError:
            if not _stale_claim(claim):
                return False
            claim.unlink(missing_ok=True)  # its writer died: take the name over, once
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()}@{_HOST}\n")
        return True
    return False


def _stale_claim(claim: Path) -> bool:
    try:
        owner = claim.read_text().strip()
    except OSError:
        return False
    pid, _, host = owner.partition("@")
    return host == _HOST and pid.isdigit() and not _alive(int(pid))
