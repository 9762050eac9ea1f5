"""CLI subcommands, one module per stage of the domain; each registers on :data:`preauth.cli.cli`."""

from . import data  # noqa: F401
from . import report  # noqa: F401
from . import training  # noqa: F401
from . import labels  # noqa: F401
from . import service  # noqa: F401
