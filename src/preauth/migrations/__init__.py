"""Alembic migrations of the decision store; run by :func:`preauth.store.migrate`, never by hand."""
