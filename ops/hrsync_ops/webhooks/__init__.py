"""Webhook receiver: vendor events in, debounced Meltano jobs out (``hrsync webhooks serve``).

* :mod:`hrsync_ops.webhooks.signatures` — the vendors' documented HMAC-SHA256 signatures,
  checked in constant time;
* :mod:`hrsync_ops.webhooks.store` — every accepted event in SQLite (fsync'd commit) *before* the
  receiver answers 200, one row per event and idempotency key, so a replay is ignored and a
  restart picks up what was not processed;
* :mod:`hrsync_ops.webhooks.scheduler` — per job, events within a window coalesce into one run; a
  run in progress gets one follow-up run; failures are retried with backoff;
* :mod:`hrsync_ops.webhooks.app` — the Starlette app (``POST /webhooks/greenhouse``,
  ``POST /webhooks/bamboohr``, ``GET /healthz``); :mod:`hrsync_ops.webhooks.cli` — the command.
"""
