"""Singer target: the embedded DuckDB warehouse."""
