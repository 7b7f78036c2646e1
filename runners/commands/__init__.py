"""One module per ``sftgate`` subcommand (see the table in :mod:`runners.cli`)."""
