"""``hrsync-sandbox``: start the vendor fakes, print their URLs and credentials, stop cleanly."""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import threading
from pathlib import Path

from hrsync.cli import run
from sandbox.httpbase import Faults
from sandbox.server import VENDORS, Sandbox


def env_lines(info: dict) -> list[str]:
    """The settings a Meltano project needs to point every plugin at this sandbox."""
    gh, bhr = info.get("greenhouse"), info.get("bamboohr")
    lines: list[str] = []
    if gh:
        lines += [
            f"TAP_GREENHOUSE_API_URL={gh['api_url']}",
            f"TAP_GREENHOUSE_TOKEN_URL={gh['token_url']}",
            f"TAP_GREENHOUSE_CLIENT_ID={gh['client_id']}",
            f"TAP_GREENHOUSE_CLIENT_SECRET={gh['client_secret']}",
            f"TAP_GREENHOUSE_USER_ID={gh['user_id']}",
        ]
    if bhr:
        for prefix in ("TAP_BAMBOOHR", "TARGET_BAMBOOHR"):
            lines += [
                f"{prefix}_API_URL={bhr['api_url']}",
                f"{prefix}_API_KEY={bhr['api_key']}",
                f"{prefix}_COMPANY_DOMAIN={bhr['company_domain']}",
            ]
    if lever := info.get("lever"):
        lines += [f"TAP_LEVER_API_URL={lever['api_url']}", f"TAP_LEVER_API_KEY={lever['api_key']}"]
    if survey := info.get("surveymonkey"):
        lines += [
            f"TAP_SURVEYMONKEY_API_URL={survey['api_url']}",
            f"TAP_SURVEYMONKEY_ACCESS_TOKEN={survey['access_token']}",
        ]
    if moodle := info.get("moodle"):
        lines += [
            f"TARGET_MOODLE_BASE_URL={moodle['base_url']}",
            f"TARGET_MOODLE_TOKEN={moodle['token']}",
            f"TAP_MOODLE_BASE_URL={moodle['base_url']}",
            f"TAP_MOODLE_TOKEN={moodle['token']}",
        ]
    if gusto := info.get("gusto"):
        lines += [
            f"TARGET_PAYROLL_API_API_URL={gusto['api_url']}",
            f"TARGET_PAYROLL_API_TOKEN_URL={gusto['token_url']}",
            f"TARGET_PAYROLL_API_CLIENT_ID={gusto['client_id']}",
            f"TARGET_PAYROLL_API_CLIENT_SECRET={gusto['client_secret']}",
            f"TARGET_PAYROLL_API_REFRESH_TOKEN={gusto['refresh_token']}",
            f"TARGET_PAYROLL_API_COMPANY_UUID={gusto['company_uuid']}",
            # tap-gusto shares the target's authorisation (and token file: Gusto rotates tokens)
            f"TAP_GUSTO_API_URL={gusto['api_url']}",
            f"TAP_GUSTO_TOKEN_URL={gusto['token_url']}",
            f"TAP_GUSTO_CLIENT_ID={gusto['client_id']}",
            f"TAP_GUSTO_CLIENT_SECRET={gusto['client_secret']}",
            f"TAP_GUSTO_REFRESH_TOKEN={gusto['refresh_token']}",
            f"TAP_GUSTO_COMPANY_UUID={gusto['company_uuid']}",
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hrsync-sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="run the vendor fakes until stopped")
    add_serve_arguments(serve_parser)
    demo_parser = sub.add_parser("demo", help="run every pipeline end to end against the sandbox")
    demo_parser.add_argument("--employees", type=int, default=200)
    demo_parser.add_argument("--seed", type=int, default=7)
    demo_parser.add_argument("--workdir", type=Path, default=Path(".hrsync/demo"))
    rehearse_parser = sub.add_parser(
        "rehearse",
        help="seed the HRIS from a people file and run every job once, with a summary of what "
        "each destination would receive and what would be dead-lettered",
    )
    rehearse_parser.add_argument(
        "--people", type=Path, required=True, help="CSV (HRIS export) or JSON lines (canonical)"
    )
    rehearse_parser.add_argument("--seed", type=int, default=7)
    rehearse_parser.add_argument("--workdir", type=Path, default=Path(".hrsync/rehearsal"))
    args = parser.parse_args(argv)
    if args.command == "rehearse":
        from sandbox.rehearse import run_rehearsal

        return run_rehearsal(people=args.people, workdir=args.workdir, seed=args.seed)
    if not 1 <= args.employees <= 1_000_000:
        parser.error("--employees must be between 1 and 1000000")
    if args.command == "demo":
        from sandbox.demo import run_demo

        return run_demo(employees=args.employees, seed=args.seed, workdir=args.workdir)
    return serve(args)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--employees", type=int, default=200, help="HRIS employees (1..1000000)")
    parser.add_argument(
        "--people",
        type=Path,
        help="seed the HRIS from this people file instead (CSV or JSON lines)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--host", default="127.0.0.1")
    for vendor in VENDORS:
        parser.add_argument(f"--{vendor}-port", type=int, default=0, help="0: a free port")
    parser.add_argument("--rate-429", type=float, default=0.0, help="share of requests -> 429")
    parser.add_argument("--rate-5xx", type=float, default=0.0, help="share of requests -> 503")
    parser.add_argument("--rate-slow", type=float, default=0.0)
    parser.add_argument("--rate-drop", type=float, default=0.0)
    parser.add_argument("--rate-malformed", type=float, default=0.0)
    parser.add_argument("--env-file", type=Path, help="write the plugin settings (KEY=VALUE) here")
    parser.add_argument("--info-file", type=Path, help="write the sandbox info JSON here")


def serve(args: argparse.Namespace) -> int:
    faults = Faults(
        rate_429=args.rate_429,
        rate_5xx=args.rate_5xx,
        rate_slow=args.rate_slow,
        rate_drop=args.rate_drop,
        rate_malformed=args.rate_malformed,
    )
    ports = {v: getattr(args, f"{v}_port") for v in VENDORS}
    world = None
    if args.people:
        from sandbox.people import PeopleFileError, PeopleWorld

        try:
            world = PeopleWorld.from_file(args.people, seed=args.seed)
        except (PeopleFileError, OSError) as exc:
            print(f"hrsync-sandbox serve: {exc}", file=sys.stderr)
            return 2
    sandbox = Sandbox(
        args.employees, args.seed, faults, host=args.host, ports=ports, world=world
    ).start()
    info = sandbox.info()
    if args.env_file:
        args.env_file.parent.mkdir(parents=True, exist_ok=True)
        # a sealing key for the dead letters (personal data) of jobs run against the sandbox
        # (kept from an earlier env file, so earlier dead letters still open)
        earlier = args.env_file.read_text().splitlines() if args.env_file.exists() else []
        key = next(
            (ln for ln in earlier if ln.startswith("HRSYNC_DLQ_KEY=")),
            f"HRSYNC_DLQ_KEY={secrets.token_urlsafe(32)}",
        )
        args.env_file.touch(mode=0o600)
        args.env_file.chmod(0o600)
        args.env_file.write_text("\n".join([*env_lines(info), key]) + "\n")
    if args.info_file:
        args.info_file.parent.mkdir(parents=True, exist_ok=True)
        args.info_file.write_text(json.dumps(info, indent=2))
    print(json.dumps(info, indent=2), flush=True)
    print("sandbox running; Ctrl-C or SIGTERM stops it", file=sys.stderr, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    sandbox.stop()
    print("sandbox stopped", file=sys.stderr)
    return 0


def console() -> None:
    """The ``hrsync-sandbox`` console script: closed pipes and missing files end quietly."""
    run(main, "hrsync-sandbox")


if __name__ == "__main__":
    console()
