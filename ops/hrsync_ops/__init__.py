"""hrsync operations: the `hrsync` command (run, status, dlq, webhooks, report, docs)."""
