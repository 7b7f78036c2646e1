"""The ``sftgate`` command line: entry point, output, one module per command."""
