"""Results written around the page cache (:class:`preauth.files.DirectFile`) hold exactly the bytes
given, whatever the sizes of the pieces, through the page cache or not, and up to a size limit."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from preauth import files
from preauth.files import DIRECT_BLOCK, DirectFile


def _pieces(total: int, seed: int = 0) -> list[bytes]:
    """Random bytes in pieces of awkward sizes: empty, one byte, odd, and longer than a block."""
    rng = np.random.default_rng(seed)
    sizes = [0, 1, 4095, 4097, DIRECT_BLOCK - 3, DIRECT_BLOCK + 5, 7]
    sizes += [int(s) for s in rng.integers(1, 3_000_000, 8)]
    data = rng.integers(0, 256, total, dtype=np.uint8).tobytes()
    out, start = [], 0
    for size in sizes:
        out.append(data[start : start + size])
        start += size
    return [*out, data[start:]]


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "page-cache"])
def test_the_file_holds_the_bytes_given_in_order(
    tmp_path: Path, direct: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not direct:
        monkeypatch.setattr(files, "_O_DIRECT", 0)  # as on a system without O_DIRECT
    pieces = _pieces(3 * DIRECT_BLOCK + 12_345)
    path = tmp_path / "out.bin"
    with DirectFile(path) as handle:
        for k, piece in enumerate(pieces):
            # Arrow buffers (what the JSON Lines writer hands over) as well as bytes
            assert handle.write(pa.py_buffer(piece) if k % 2 else piece) == len(piece)
    assert path.read_bytes() == b"".join(pieces)


def test_an_empty_file_and_a_file_smaller_than_a_page(tmp_path: Path) -> None:
    with DirectFile(tmp_path / "empty") as handle:
        pass
    with DirectFile(tmp_path / "small") as handle:
        handle.write(b'{"a":1}\n')
    assert (tmp_path / "empty").read_bytes() == b""
    assert (tmp_path / "small").read_bytes() == b'{"a":1}\n'
    assert handle.closed


def test_a_size_limit_stops_the_writing_at_the_limit_with_efbig(tmp_path: Path) -> None:
    """Past RLIMIT_FSIZE the kernel shortens a write to an unaligned size, which O_DIRECT refuses:
    the file is then written through the page cache up to the limit, and the next write fails."""
    limit = 3 * DIRECT_BLOCK // 2 + 1234
    program = (
        "import errno, resource, sys; from pathlib import Path; from preauth.files import DirectFile\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "try:\n"
        "    with DirectFile(Path(sys.argv[1])) as handle:\n"
        "        for _ in range(4): handle.write(bytes(range(256)) * (1 << 15))\n"
        "except OSError as error:\n"
        "    sys.exit(0 if error.errno == errno.EFBIG else 3)\n"
        "sys.exit(4)\n"
    )
    path = tmp_path / "limited"
    done = subprocess.run([sys.executable, "-c", program, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert path.stat().st_size == limit
    assert path.read_bytes() == (bytes(range(256)) * (limit // 256 + 1))[:limit]


def test_a_missing_directory_is_the_system_error_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(OSError) as raised:
        DirectFile(tmp_path / "missing" / "out.jsonl")
    assert raised.value.errno == errno.ENOENT
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not files._O_DIRECT, reason="this system has no O_DIRECT to turn off")
@pytest.mark.parametrize(("setting", "expected"), [(None, True), ("false", False)])
def test_the_direct_writes_setting_decides_how_predict_opens_its_results(
    tmp_path: Path,
    bundled_data: Path,
    small_models_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    setting: str | None,
    expected: bool,
) -> None:
    import fcntl

    from click.testing import CliRunner

    from preauth.cli import cli

    opened: list[bool] = []
    real = DirectFile.__init__

    def init(self: DirectFile, path: Path, *, direct: bool = True) -> None:
        real(self, path, direct=direct)
        opened.append(bool(fcntl.fcntl(self._fd, fcntl.F_GETFL) & files._O_DIRECT))

    monkeypatch.setattr(DirectFile, "__init__", init)
    env = {} if setting is None else {"PREAUTH_DIRECT_WRITES": setting}
    out = tmp_path / "results"
    args = ["--models-dir", str(small_models_dir), "predict", str(bundled_data), "-o", str(out)]
    result = CliRunner(env=env).invoke(cli, [*args, "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert opened == [expected]
    [written] = out.glob("*.jsonl")
    assert len(written.read_bytes().splitlines()) == 1000
