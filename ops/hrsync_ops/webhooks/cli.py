"""``hrsync webhooks serve``: the webhook receiver (uvicorn), secrets from the environment."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from hrsync_ops.webhooks import trace
from hrsync_ops.webhooks.app import (
    ENV_HEALTH_TOKEN,
    ENV_SECRETS,
    ReceiverConfig,
    create_app,
    jobs_by_source,
)
from hrsync_ops.webhooks.fastpath import FastPathRunner
from hrsync_ops.webhooks.scheduler import Scheduler, command_runner, default_command
from hrsync_ops.webhooks.server import server_config
from hrsync_ops.webhooks.store import EventStore, default_path


def register(sub: Any) -> None:
    hooks = sub.add_parser("webhooks", help="receive vendor webhooks and trigger jobs")
    actions = hooks.add_subparsers(dest="webhooks_command", required=True)
    serve = actions.add_parser(
        "serve",
        help="run the receiver",
        description="Secrets: $" + ", $".join(ENV_SECRETS.values()) + " (a vendor without "
        "one is not served). Every accepted event is stored before the 200 and runs the "
        "jobs that read that vendor (from meltano.yml), debounced. /healthz shows details "
        f"only with 'Authorization: Bearer ${ENV_HEALTH_TOKEN}'.",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)
    serve.add_argument("--db", type=Path, help=f"event store (default: {default_path()})")
    serve.add_argument("--project-dir", type=Path, default=Path(), help="the Meltano project")
    serve.add_argument(
        "--command",
        default=os.environ.get("HRSYNC_WEBHOOK_COMMAND"),
        help="job command, {job} substituted (default: 'hrsync run {job}' when available, "
        "else 'meltano run {job}'; $HRSYNC_WEBHOOK_COMMAND)",
    )
    serve.add_argument(
        "--window", type=float, default=1.0, help="seconds in which events coalesce into one run"
    )
    serve.add_argument(
        "--tolerance", type=float, default=300.0, help="max age in seconds of a signed timestamp"
    )
    serve.add_argument(
        "--retry-base", type=float, default=5.0, help="first retry after a failed run"
    )
    serve.add_argument(
        "--route",
        action="append",
        default=[],
        metavar="SOURCE=JOB",
        help="run JOB for SOURCE's events (repeatable; replaces what meltano.yml implies)",
    )
    serve.add_argument("--log-dir", type=Path, default=Path(".hrsync/webhook-runs"))
    serve.add_argument(
        "--header-timeout", type=float, default=10.0,
        help="seconds a client has to send a request's headers (then 408 and closed)",
    )  # fmt: skip
    serve.add_argument(
        "--body-timeout", type=float, default=30.0, help="seconds a request's body may take"
    )
    serve.add_argument(
        "--fast-path",
        action="store_true",
        help="run each job's own plugins, started warm ahead of the event, for the changes since "
        "its last successful 'hrsync run' (seconds instead of a Meltano start-up; Meltano's "
        "state untouched, the scheduled run stays the safety net); else the job command",
    )
    serve.add_argument(
        "--fast-margin", type=float, default=300.0,
        help="fast path: seconds before the last successful run's start to read changes from",
    )  # fmt: skip
    serve.add_argument(
        "--trace", type=Path, metavar="FILE",
        help="append a JSON line per stage of each event (received, stored, run, each plugin "
        "started and ended; the fast path keeps its plugins' logs) to FILE, for profiling",
    )  # fmt: skip
    serve.add_argument("--ssl-certfile", help="serve HTTPS (vendors only post to https URLs)")
    serve.add_argument("--ssl-keyfile")
    serve.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    secrets = {src: os.environ.get(env, "") for src, env in ENV_SECRETS.items()}
    secrets = {src: value for src, value in secrets.items() if value}
    if not secrets:
        print(
            "hrsync webhooks serve: no webhook secret set: export "
            + " and/or ".join(ENV_SECRETS.values()),
            file=sys.stderr,
        )
        return 2
    project = args.project_dir.resolve()
    if args.route:
        jobs: dict[str, list[str]] = {}
        for item in args.route:
            source, _, job = item.partition("=")
            if not job:
                print(f"--route {item!r}: expected SOURCE=JOB", file=sys.stderr)
                return 2
            jobs.setdefault(source, []).append(job)
    else:
        jobs = jobs_by_source(project / "meltano.yml")
    store = EventStore(args.db)
    trace.configure(args.trace)
    command = args.command or default_command()
    runner = command_runner(command, cwd=project, log_dir=args.log_dir.resolve())
    fast: FastPathRunner | None = None
    if args.fast_path:
        fast = FastPathRunner(runner)
        routed = list(dict.fromkeys(job for routed in jobs.values() for job in routed))
        fast.start(project, routed, timedelta(seconds=args.fast_margin))
    scheduler = Scheduler(
        store,
        fast or runner,
        window=args.window,
        retry_base=args.retry_base,
    )
    config = ReceiverConfig(
        secrets=secrets,
        jobs=jobs,
        tolerance=args.tolerance,
        body_timeout=args.body_timeout,
        health_token=os.environ.get(ENV_HEALTH_TOKEN) or None,
    )
    logging.getLogger("hrsync_ops.webhooks").info(
        "serving %s; jobs %s; command %r; store %s", sorted(secrets), jobs, command, store.path
    )
    try:
        serve(args, create_app(config, store, scheduler))
    finally:
        if fast is not None:
            fast.stop()
    return 0


def serve(args: argparse.Namespace, app: Any) -> None:
    import uvicorn

    uvicorn.Server(
        server_config(
            app,
            host=args.host,
            port=args.port,
            header_timeout=args.header_timeout,
            ssl_certfile=args.ssl_certfile,
            ssl_keyfile=args.ssl_keyfile,
        )
    ).run()
