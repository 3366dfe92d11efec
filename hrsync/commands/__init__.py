"""Subcommands of ``hrsync`` (see hrsync.cli.COMMANDS)."""
