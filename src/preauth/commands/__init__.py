"""CLI subcommands, one module per stage of the domain; each registers on :data:`preauth.cli.cli`."""

from . import challengers, data, decisions, labels, monitoring, outcomes, report, schema, service, training  # noqa: F401
