"""target_bamboohr."""
