"""Webhook -> HRIS latency on the sandbox, against a directly started run of the same job.

    .venv/bin/python benchmarks/bench_webhook_latency.py [--employees 200] [--hires 3]

One sandbox (Greenhouse + BambooHR fakes, in this process), one first ``meltano run
--full-refresh ats-to-hris`` (what a schedule would have done), then ``hrsync webhooks serve``
(real process, default command) with the Greenhouse fake's web hook pointed at it.

- **webhook path**: an offer is accepted in the Greenhouse fake -> the fake signs and posts
  ``offer_updated`` + ``hire_candidate`` -> the receiver verifies, stores and debounces (window
  0.5 s) -> ``ats-to-hris`` runs -> the employee exists in the BambooHR fake (polled every
  0.1 s through the custom-report API). ``--hires`` times, one after the other.
- **peer: direct run**: an offer is accepted and ``meltano run ats-to-hris`` is started at once
  by this script (what a poller that happened to fire at that instant would do): the floor of
  any trigger mechanism, since both pay the same Meltano run.
- **burst**: five offers accepted at once: how many runs the receiver makes and when the last
  employee arrives.

Prints the seconds and the webhook / direct ratio, and writes benchmarks/results/webhook_latency.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from sandbox.demo import meltano_env
from sandbox.seed import CANDIDATE_BASE, Offer
from sandbox.server import Sandbox
from sandbox.webhooks import start_receiver

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "webhook_latency.md"
MELTANO = str(Path(sys.executable).parent / "meltano")
SECRET = "bench-greenhouse-webhook-secret"


def open_offers(sb: Sandbox) -> list[Offer]:
    w = sb.world
    return [
        o
        for k in range(w.employees + 1, w.employees + w.not_hired + 1)
        for o in w.offers_for_candidate(CANDIDATE_BASE + k)
        if o.status == "Created"
    ]


def hired(sb: Sandbox, candidate_ids: set[int]) -> set[int]:
    creds = sb.credentials["bamboohr"]
    resp = requests.post(
        f"{sb.bamboohr_url}/api/v1/reports/custom",
        params={"format": "JSON", "onlyCurrent": "false"},
        json={"fields": ["id", "customATSCandidateID"]},
        auth=(creds["api_key"], "x"),
        headers={"Accept": "application/json"},
        timeout=30,
    )
    resp.raise_for_status()
    have = {str(e["customATSCandidateID"]) for e in resp.json()["employees"]}
    return {c for c in candidate_ids if str(c) in have}


def accept(sb: Sandbox, offer: Offer) -> None:
    url = f"{sb.greenhouse_url}/_sandbox/greenhouse/offers/{offer.id}/accept"
    requests.post(url, timeout=10).raise_for_status()


def wait_hired(sb: Sandbox, ids: set[int], started: float, timeout: float = 300) -> float:
    while time.monotonic() - started < timeout:
        if hired(sb, ids) == ids:
            return time.monotonic() - started
        time.sleep(0.1)
    raise RuntimeError(f"candidates {sorted(ids)} never reached the HRIS")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=200)
    parser.add_argument("--hires", type=int, default=3)
    args = parser.parse_args()
    subprocess.run([MELTANO, "install"], cwd=ROOT, check=True, capture_output=True)
    work = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    with Sandbox(employees=args.employees) as sb:
        offers = open_offers(sb)
        if len(offers) < 2 * args.hires + 5:
            raise SystemExit(f"--employees {args.employees} has only {len(offers)} open offers")
        env = meltano_env(sb, work) | {
            "HRSYNC_INTEGRATION": "ats-to-hris",
            "HRSYNC_RUNS_PATH": str(work / "runs.sqlite"),
            "HRSYNC_DLQ_PATH": str(work / "deadletters.sqlite"),
        }
        started = time.monotonic()
        subprocess.run([MELTANO, "run", "--full-refresh", "ats-to-hris"], cwd=ROOT, env=env,
                       check=True, capture_output=True)  # fmt: skip
        print(f"first full sync: {time.monotonic() - started:.1f} s")

        direct = []
        for _ in range(args.hires):
            offer = offers.pop()
            t0 = time.monotonic()
            accept(sb, offer)
            subprocess.run([MELTANO, "run", "ats-to-hris"], cwd=ROOT, env=env, check=True,
                           capture_output=True)  # fmt: skip
            direct.append(wait_hired(sb, {offer.candidate_id}, t0))
            print(f"  direct run: {direct[-1]:.1f} s")

        receiver = start_receiver(
            work / "receiver", secrets={"greenhouse": SECRET}, env=env, cwd=ROOT,
            args=["--window", "0.5", "--route", "greenhouse=ats-to-hris"],
        )  # fmt: skip
        command = "hrsync run" if "hrsync run" in (work / "receiver" / "receiver.log").read_text() \
            else "meltano run"  # fmt: skip
        try:
            gh = sb.apps["greenhouse"]
            gh.webhooks.register(f"{receiver.url}/webhooks/greenhouse", SECRET)  # type: ignore[attr-defined]
            webhook = []
            for _ in range(args.hires):
                offer = offers.pop()
                t0 = time.monotonic()
                accept(sb, offer)
                webhook.append(wait_hired(sb, {offer.candidate_id}, t0))
                print(f"  webhook:    {webhook[-1]:.1f} s")
                while receiver.health()["jobs"]["ats-to-hris"]["running"]:
                    time.sleep(0.1)
            runs_before = receiver.health()["jobs"]["ats-to-hris"]["runs"]
            burst = [offers.pop() for _ in range(5)]
            t0 = time.monotonic()
            for offer in burst:
                accept(sb, offer)
            burst_s = wait_hired(sb, {o.candidate_id for o in burst}, t0)
            time.sleep(2)
            while receiver.health()["jobs"]["ats-to-hris"]["running"]:
                time.sleep(0.2)
            burst_runs = receiver.health()["jobs"]["ats-to-hris"]["runs"] - runs_before
            events = receiver.health()["events"]
        finally:
            receiver.stop()
    w_med, d_med = statistics.median(webhook), statistics.median(direct)
    w_each, d_each = ", ".join(f"{s:.1f}" for s in webhook), ", ".join(f"{s:.1f}" for s in direct)
    ratio = w_med / d_med
    print(f"webhook -> HRIS median {w_med:.1f} s; direct run {d_med:.1f} s; ratio {ratio:.2f}")
    print(f"burst of 5 hires: {burst_runs} run(s), last employee after {burst_s:.1f} s")
    RESULTS.write_text(
        f"""# Webhook -> HRIS latency

`benchmarks/bench_webhook_latency.py --employees {args.employees} --hires {args.hires}`: an
offer accepted in the Greenhouse fake until the employee exists in the BambooHR fake, on the
sandbox (loopback HTTP, real `hrsync webhooks serve`, real `{command} ats-to-hris` through
Meltano, incremental after one full sync).

| path | seconds (each hire) | median |
|---|---|---:|
| webhook: `hire_candidate` -> receiver (stored, 0.5 s window) -> job | {w_each} | {w_med:.1f} |
| peer: `meltano run ats-to-hris` started by hand at the hire | {d_each} | {d_med:.1f} |

webhook / direct ratio: **{ratio:.2f}** (the receiver adds a signature check, a durable
store, the debounce window and `hrsync run`'s bookkeeping to the same Meltano run; on a shared
2-core machine the run-to-run noise of the Meltano run itself is larger than that overhead).

Burst: 5 offers accepted at once -> **{burst_runs}** run(s) of `ats-to-hris` (events within the
window coalesce; events during a run get one follow-up), last employee after {burst_s:.1f} s.
Events stored by the receiver: {events}.

Nearly all of the latency is the Meltano run itself (plugin start-up, discovery, one
incremental extract); a scheduled poll would add on average half its interval (7.5 min for a
15-minute schedule) on top.

Machine: {platform.platform()}, Python {platform.python_version()}, 2 CPUs shared.
""",
        encoding="utf-8",
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
