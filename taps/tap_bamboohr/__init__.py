"""tap_bamboohr."""
