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

import errno
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_MODE = 0o644
"""Readable by others: results and bundles are meant to be served and shared (mkstemp gives 0600)."""

PARTIAL_SUFFIX = ".part"
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:63] or "host"
_PARTIAL = re.compile(r"^\..+\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]+)\.[^.]+\.part$")


def partial_prefix(name: str) -> str:
    """The start of a partial file's name: hidden, then the final name, this process and host."""
    return f".{name}.{os.getpid()}@{_HOST}."


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that is renamed onto it only when the block succeeds."""
    if path.exists() and not path.is_file() and not path.is_dir():
        # The rename would put a regular file in place of a pipe or a device (/dev/null, as root).
        raise OSError(errno.EINVAL, "not a regular file; name a file to write", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
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


def staging_directory(parent: Path, name: str) -> Path:
    """A hidden directory to assemble ``parent/<something>`` in, named and cleaned up like partial files."""
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(parent)
    return Path(tempfile.mkdtemp(prefix=partial_prefix(name), suffix=PARTIAL_SUFFIX, dir=parent))


def write_text_atomic(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


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


def remove_stale_partials(directory: Path) -> list[Path]:
    """Remove the partial files and staging directories in ``directory`` whose writer has died."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
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
