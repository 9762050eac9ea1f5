"""The exceptions preauth raises.

One small hierarchy so that every front end can turn a failure into something a user can act on:
the CLI prints ``str(error)`` on one line and exits with ``error.exit_code``; the service answers
with ``error.http_status``. Messages never carry a traceback or an internal path beyond the input
file the user named.
"""

from __future__ import annotations


class PreauthError(Exception):
    """Base class: something the user can fix, explained in one line."""

    exit_code = 1
    http_status = 500


class InputError(PreauthError):
    """Bad input data: names the file, the row (1-based, counting data rows) and the column."""

    exit_code = 2
    http_status = 422

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.row = row
        self.column = column
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.source:
            where.append(self.source)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column '{self.column}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class ModelBundleError(PreauthError):
    """A model bundle is missing, damaged or incompatible with this version of preauth."""

    exit_code = 3
    http_status = 503


class ProviderError(PreauthError):
    """A label provider failed in a way retrying will not fix (bad credentials, unknown model)."""

    exit_code = 4
    http_status = 502


class ConfigurationError(PreauthError):
    """A setting or option has a value that cannot work."""

    exit_code = 2
    http_status = 500


class ClusterError(PreauthError):
    """The Dask cluster failed under a job (a worker lost in the middle of a fit): nothing was
    written, and the same command run again can succeed."""

    exit_code = 1
    http_status = 503
