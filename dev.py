#!/usr/bin/env python3
"""Set up and run preauth on a fresh machine that has only Python 3.11 and pip.

    python3 dev.py run    # install (once) and run the whole pipeline on the bundled data, offline
    python3 dev.py test   # install (once) with test tools, then lint, type-check and run every test
                          # (the booster-path service tests a second time with XGBoost's C-API fast path off)

Installs go into ./.venv from the pinned requirements*.lock files, and are redone only when a lock
file changes. The test command also makes sure the machine has what the tests talk to for real:
Debian's chromium for the browser tests and a running PostgreSQL server for the store tests.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
RUNTIME_LOCK = ROOT / "requirements.lock"
TEST_LOCK = ROOT / "requirements-test.lock"


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def run(*command: str | Path, check: bool = True, env: dict[str, str] | None = None) -> int:
    return subprocess.run([str(c) for c in command], cwd=ROOT, check=check, env=env).returncode


def ensure_venv(with_tests: bool) -> None:
    """Create .venv and install the pinned dependencies unless they are installed already."""
    locks = [RUNTIME_LOCK] + ([TEST_LOCK] if with_tests else [])
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in locks)).hexdigest()
    stamp = VENV / f".installed-{'test' if with_tests else 'run'}"
    if stamp.exists() and stamp.read_text() == digest and (BIN / "preauth").exists():
        return
    if not (BIN / "python").exists():
        say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    say("installing pinned dependencies (first run only)")
    pip = [BIN / "python", "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    for lock in locks:
        run(*pip, "-r", lock)
    run(*pip, "--no-deps", "-e", ".")
    stamp.write_text(digest)


def ensure_chromium() -> None:
    """The browser tests drive Debian's chromium; install it when missing and we may."""
    if Path("/usr/bin/chromium").exists():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        say("warning: /usr/bin/chromium is missing and cannot be installed here; browser tests will fail")
        return
    say("installing chromium from Debian's packages (first run only)")
    quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-qq", env=quiet)
    run("apt-get", "install", "-y", "-qq", "chromium", env=quiet)


def ensure_postgres() -> None:
    """Start the machine's PostgreSQL cluster if it is installed but not running."""
    if not shutil.which("pg_isready"):
        say("no PostgreSQL client tools here; PostgreSQL tests will say why they skip")
        return
    if run("pg_isready", "-q", "-h", "127.0.0.1", check=False) == 0:
        return
    clusters = sorted(Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").exists() else []
    if clusters and shutil.which("pg_ctlcluster"):
        say("starting PostgreSQL")
        run("pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1].name, "main", "start", check=False)


def command_run(args: list[str]) -> int:
    ensure_venv(with_tests=False)
    return run(BIN / "preauth", "run", *args, check=False)


def command_test(args: list[str]) -> int:
    ensure_venv(with_tests=True)
    ensure_chromium()
    ensure_postgres()
    say("ruff")
    if run(BIN / "ruff", "check", "src", "tests", "bench", "dev.py", check=False):
        return 1
    if run(BIN / "ruff", "format", "--check", "src", "tests", "bench", "dev.py", check=False):
        return 1
    say("mypy")
    if run(BIN / "mypy", check=False):
        return 1
    say("pytest")
    if code := run(BIN / "pytest", *args, check=False):
        return code
    if args:  # a chosen subset: run just that, once
        return 0
    # The service scores through XGBoost's C API when it can; the service tests whose answers go
    # through that call (marked booster_path) run once more without it, so the Python API path every
    # other XGBoost version gets is exercised too. The rest (store, exports, reviews...) never call the
    # booster differently, so running them twice would only cost time.
    say("pytest: booster-path service tests with PREAUTH_FAST_BOOSTER_CALLS=false")
    plain = {**os.environ, "PREAUTH_FAST_BOOSTER_CALLS": "false"}
    return run(BIN / "pytest", "-q", "-m", "booster_path", "tests/service", check=False, env=plain)


def main() -> int:
    commands = {"run": command_run, "test": command_test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
