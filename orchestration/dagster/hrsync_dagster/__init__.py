"""hrsync's Dagster code location (``hrsync_dagster.definitions``)."""
