"""What every PostgreSQL connection preauth opens shares: the decision store's and the study storage's.

A module of its own, with no imports, so that the training commands can read it without loading
SQLAlchemy at start-up (``tests/scale/test_startup.py``).
"""

from __future__ import annotations

CONNECT_TIMEOUT = 10
"""Seconds a PostgreSQL server has to accept a connection and answer (libpq's ``connect_timeout``):
a host that drops the packets, or a port that accepts and says nothing, would otherwise hold the
service's request, or the command, for ever."""
