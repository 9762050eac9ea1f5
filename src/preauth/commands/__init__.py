"""CLI subcommands, one module per stage of the domain; each registers on :data:`preauth.cli.cli`."""

from . import challengers, data, labels, outcomes, report, schema, service, training  # noqa: F401
