"""The schema fuzzer: schemathesis, driven by ``/openapi.json``, against a real server on each store.

A bounded run (a fixed seed, a few dozen examples per operation, every phase: the schema's
examples, boundary coverage, random fuzzing and stateful sequences that follow the links
between operations) must find no server error and no answer outside the published contract:
status code, content type, headers, body schema, and the ``Allow`` of a 405.

Not asserted: ``positive_data_acceptance`` (the published request schemas cannot say everything
validation checks: a cursor's content, a CSV body's fields), ``negative_data_rejection`` (extra
keys are ignored by design) and the stateful resource checks (a decision's ``/outcome`` is 404
until one is recorded, which schemathesis reads as a resource that vanished).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ST = Path(sys.executable).parent / "st"
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "allow_header_conformance",
)
EXAMPLES = 25
SEED = 20261125


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request, serve):
    if request.param == "postgresql":
        return serve(database_url=request.getfixturevalue("fresh_postgres_url"))
    return serve()


def test_the_fuzzer_finds_no_server_error_and_no_contract_mismatch(server, tmp_path):
    command = [
        str(ST),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--no-shrink",
        "--workers",
        "1",
        "--request-timeout",
        "30",
    ]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-12000:]
    # every published operation was exercised, with generated cases, not skipped
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    generated = re.search(r"(\d+) generated", report)
    assert selected and tested and generated, report[-3000:]
    assert selected.group(1) == selected.group(2) == tested.group(1) and int(tested.group(1)) >= 8, report
    assert int(generated.group(1)) >= 200 * EXAMPLES // 25, report[-3000:]
