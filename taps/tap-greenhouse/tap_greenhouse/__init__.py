"""tap_greenhouse."""
