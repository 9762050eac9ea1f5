"""Fixtures for the labels area: a live chat-completions server and small application sets."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openai_server import ChatServer  # noqa: E402

from preauth.applications import Applications, read_applications, validate  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "src" / "preauth" / "data"


@pytest.fixture(scope="session")
def _server() -> Iterator[ChatServer]:
    server = ChatServer().start()
    yield server
    server.stop()


@pytest.fixture
def chat_server(_server: ChatServer) -> Iterator[ChatServer]:
    """The live server, reset to good behaviour and zero counts for each test."""
    _server.reset()
    yield _server
    _server.reset()


@pytest.fixture(scope="session")
def german() -> Applications:
    return read_applications(DATA / "german_credit_risk.csv")


def first(applications: Applications, n: int) -> Applications:
    """The first n applications as their own set (all distinct in the bundled data)."""
    table = pd.read_csv(applications.source, dtype=str, keep_default_na=False).head(n)
    return validate(table, source=applications.source)


@pytest.fixture
def few(german: Applications) -> Applications:
    return first(german, 6)
