"""One module per ``sftgate`` subcommand (see the table in :mod:`sftgate.runners.cli.main`)."""
