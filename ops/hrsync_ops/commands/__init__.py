"""Subcommands of ``hrsync`` (see hrsync_ops.cli.COMMANDS)."""
