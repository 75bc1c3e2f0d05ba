"""pytest plugin (entry point ``pytest11``); the ``--gradtool`` option comes with the CLI."""
