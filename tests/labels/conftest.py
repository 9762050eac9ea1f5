"""Fixtures for the labels area: a live chat-completions server and small application sets."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labels_support import DATA, first  # noqa: E402
from openai_server import ChatServer  # noqa: E402

from preauth.applications import Applications, read_applications  # noqa: E402


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


@pytest.fixture
def few(german: Applications) -> Applications:
    return first(german, 6)
