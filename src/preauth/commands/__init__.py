"""CLI subcommands, one module per stage of the domain; each lists its commands in ``COMMANDS``,
which :mod:`preauth.cli` adds to the ``preauth`` group (the commands never import the group)."""
