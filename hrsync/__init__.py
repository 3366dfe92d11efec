"""hrsync."""
