"""Chaos: faults on every API (429 + Retry-After, 5xx, slow, dropped connections) and the
target SIGKILLed halfway through a job; a re-run converges: the destination equals the source,
nothing is doubled, nothing is lost, and whatever could not be delivered is a dead letter.

The numbers are printed and kept in benchmarks/results/chaos.md."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from chaos_kit import ChaosNumbers, Run, record, run_pipeline, stage

from hrsync.deadletter import DeadLetterStore
from sandbox.bamboohr import CANDIDATE_FIELD
from sandbox.directories import (
    ADMIN,
    DISABLED,
    GROUPS,
    PASSWORD,
    PEOPLE,
    start_scim_server,
    start_slapd,
)
from sandbox.httpbase import Faults
from sandbox.server import Sandbox

RETRIES = {
    "max_retries": 12,
    "backoff_base_seconds": 0.01,
    "backoff_max_seconds": 0.2,
    "retry_max_seconds": 60,
}
HMAC_KEY = "chaos-test-hmac-key"


def faults(seed: int, scale: float = 1.0) -> Faults:
    return Faults(
        rate_429=0.08 * scale,
        rate_5xx=0.05 * scale,
        rate_slow=0.03 * scale,
        slow_seconds=0.3,
        rate_drop=0.02 * scale,
        retry_after=0,
        seed=seed,
    )


def base_env(tmp: Path, job: str) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "HRSYNC_INTEGRATION": job,
        "HRSYNC_DLQ_PATH": str(tmp / "deadletters.sqlite"),
        "HRSYNC_AUDIT_LOG": str(tmp / "audit.jsonl"),
    }


def waiting_letters(tmp: Path, plugin: str) -> set[str]:
    return {
        letter.record_key
        for letter in DeadLetterStore(tmp / "deadletters.sqlite").list(plugin=plugin)
    }


def converge(
    stages: list[list[str]], env: dict[str, str], tmp: Path, kill_when: Callable[[], int | None]
) -> tuple[Run, Run]:
    first = run_pipeline(stages, env, tmp, kill_when=kill_when)
    assert first.killed_at is not None, f"the target finished before it was killed\n{first.tail()}"
    second = run_pipeline(stages, env, tmp)
    assert second.codes[-1] == 0, second.tail()
    return first, second


# --- ats-to-hris: Greenhouse -> BambooHR ---------------------------------------------------


def test_ats_to_hris_converges_after_sigkill_under_faults(tmp_path: Path) -> None:
    # two fakes: a Greenhouse with 300 employees' worth of accepted offers, and a nearly empty
    # BambooHR, so that the job has ~250 employees to create
    with (
        Sandbox(employees=300, vendors=("greenhouse",), faults=faults(11)) as src,
        Sandbox(employees=1, vendors=("bamboohr",), faults=faults(12)) as dst,
    ):
        hris = dst.apps["bamboohr"]
        # a poison record: a new hire whose work e-mail already belongs to an HRIS employee
        # (BambooHR answers 409): undeliverable on every run -> a dead letter, never lost
        poison = src.world.pending_hires()[0]
        taken = dst.world.person(1).work_email
        assert taken
        src.world.update_candidate(poison.id, work_email=taken)
        source_keys = {
            str(src.world.offer(i).candidate_id)
            for i in src.world.ids("offers", limit=10**9)
            if src.world.offer(i).status == "Accepted"
        }
        gh, bh = src.info()["greenhouse"], dst.info()["bamboohr"]
        stages = [
            stage(
                "tap-greenhouse",
                {
                    k: gh[k]
                    for k in ("api_url", "token_url", "client_id", "client_secret", "user_id")
                }
                | RETRIES,
                tmp_path,
            ),
            stage(
                "map-hr",
                {
                    "profile": "ats_to_hris",
                    "hmac_key": HMAC_KEY,
                    "state_dir": str(tmp_path / "map-hr"),
                },
                tmp_path,
            ),
            stage(
                "target-bamboohr",
                {
                    "api_url": bh["api_url"],
                    "api_key": bh["api_key"],
                    "company_domain": bh["company_domain"],
                }
                | RETRIES,
                tmp_path,
            ),
        ]
        env = base_env(tmp_path, "ats-to-hris")
        half = (len(source_keys) - 1) // 2

        def kill_when() -> int | None:
            n = len(hris.created)
            return n if n >= half else None

        first, _ = converge(stages, env, tmp_path, kill_when)

        dst.faults.reset()
        held = Counter(
            str(hris.employee(e).get(CANDIDATE_FIELD))
            for e in hris.employee_ids()
            if hris.employee(e).get(CANDIDATE_FIELD)
        )
        letters = waiting_letters(tmp_path, "target-bamboohr")
        delivered = set(held) & source_keys
        numbers = ChaosNumbers(
            job="ats-to-hris",
            destination="BambooHR fake",
            records_in=len(source_keys),
            at_destination=len(delivered),
            duplicates=sum(n - 1 for n in held.values() if n > 1),
            dead_letters=len(letters),
            lost=len(source_keys - delivered - letters),
            killed_at=first.killed_at,
            faults={
                k: src.faults.injected.get(k, 0) + dst.faults.injected.get(k, 0)
                for k in set(src.faults.injected) | set(dst.faults.injected)
            },
            note="poison: 1 new hire with a taken work e-mail (409)",
        )
        record(numbers)
        assert numbers.duplicates == 0, held.most_common(3)
        assert numbers.lost == 0, sorted(source_keys - delivered - letters)[:5]
        assert letters == {str(poison.id)}  # the poison, and nothing that was delivered
        assert delivered == source_keys - letters
        assert set(held) <= source_keys  # nothing the source does not have
        assert sum(numbers.faults.values()) > 10  # the runs really went through faults


# --- hris-to-iam: BambooHR -> SCIM (scim2-server) and LDAP (slapd) -------------------------


def expected_accounts(sb: Sandbox) -> set[str]:
    today = sb.world.as_of
    return {
        str(p.employee_id)
        for p in sb.world.people()
        if p.work_email and (p.termination_date is None or p.termination_date > today)
    }


def iam_stages(sb: Sandbox, target: list[str], tmp: Path) -> list[list[str]]:
    bh = sb.info()["bamboohr"]
    return [
        stage(
            "tap-bamboohr",
            {
                "api_url": bh["api_url"],
                "api_key": bh["api_key"],
                "company_domain": bh["company_domain"],
                "page_size": 20,
            }
            | RETRIES,
            tmp,
        ),
        stage(
            "map-hr",
            {
                "profile": "bamboohr_to_canonical",
                "hmac_key": HMAC_KEY,
                "state_dir": str(tmp / "map-canonical"),
            },
            tmp,
        ),
        stage(
            "map-hr",
            {"profile": "hris_to_iam", "hmac_key": HMAC_KEY, "state_dir": str(tmp / "map-iam")},
            tmp,
        ),
        target,
    ]


@pytest.mark.parametrize("destination", ["scim", "ldap"])
def test_hris_to_iam_converges_after_sigkill_under_faults(destination: str, tmp_path: Path) -> None:
    with Sandbox(employees=300, vendors=("bamboohr",), faults=faults(21, 2.5)) as sb:
        # a poison: two employees with one work e-mail (the login): one of them cannot get an
        # account (the directory refuses a second userName / mail) -> a dead letter, not lost
        expected = expected_accounts(sb)
        owner, clash = sorted(expected, key=int)[10:12]
        sb.world.update_person(int(clash), work_email=sb.world.person(int(owner)).work_email)
        env = base_env(tmp_path, "hris-to-iam")
        half = len(expected) // 2
        if destination == "scim":
            scim = start_scim_server()
            base = scim.url("chaos")
            headers = {"Authorization": f"Bearer {scim.token}"}
            target = stage(
                "target-scim",
                {
                    "base_url": base,
                    "bearer_token": scim.token,
                    "use_bulk": False,
                    "max_concurrency": 1,
                }
                | RETRIES,
                tmp_path,
            )

            def accounts() -> list[dict[str, Any]]:
                body = requests.get(
                    f"{base}/Users", params={"count": 5000}, headers=headers, timeout=30
                ).json()
                return [
                    {"key": u.get("externalId"), "active": u.get("active") in (True, "true")}
                    for u in body.get("Resources", [])
                ]

            def count() -> int:
                body = requests.get(
                    f"{base}/Users", params={"count": 0}, headers=headers, timeout=30
                ).json()
                return int(body.get("totalResults", 0))

            stop = scim.stop
            plugin = "target-scim"
        else:
            slapd = start_slapd(tmp_path / "slapd")
            rules = [{"group": f"cn=all-staff,{GROUPS}", "match": {}}]
            target = stage(
                "target-ldap",
                {
                    "url": slapd.url,
                    "bind_dn": ADMIN,
                    "bind_password": PASSWORD,
                    "base_dn": PEOPLE,
                    "mode": "openldap",
                    "dn_template": f"uid={{uid}},ou={{department}},{PEOPLE}",
                    "disabled_ou": DISABLED,
                    "group_rules": rules,
                    "max_connections": 1,
                },
                tmp_path,
            )

            def accounts() -> list[dict[str, Any]]:
                people = slapd.entries(PEOPLE, "(objectClass=inetOrgPerson)", ["employeeNumber"])
                gone = slapd.entries(DISABLED, "(objectClass=inetOrgPerson)", ["employeeNumber"])
                return [
                    {"key": str(a["employeeNumber"][0]), "active": active}
                    for active, found in ((True, people), (False, gone))
                    for a in found.values()
                ]

            def count() -> int:
                return len(slapd.entries(PEOPLE, "(objectClass=inetOrgPerson)", ["uid"]))

            stop = slapd.stop
            plugin = "target-ldap"
        try:
            first, _ = converge(
                iam_stages(sb, target, tmp_path),
                env,
                tmp_path,
                lambda: n if (n := count()) >= half else None,
            )
            held = Counter(a["key"] for a in accounts())
            active = {a["key"] for a in accounts() if a["active"]}
        finally:
            stop()
        letters = waiting_letters(tmp_path, plugin)
        numbers = ChaosNumbers(
            job="hris-to-iam",
            destination="scim2-server" if destination == "scim" else "OpenLDAP slapd",
            records_in=len(expected),
            at_destination=len(active & expected),
            duplicates=sum(n - 1 for n in held.values() if n > 1),
            dead_letters=len(letters),
            lost=len(expected - active - letters),
            killed_at=first.killed_at,
            faults=dict(sb.faults.injected),
            note=f"records in = active employees with a work e-mail (of {sb.world.employees}); "
            "poison: 2 employees share one work e-mail"
            + ("" if letters else " (this directory accepts both: no dead letter)"),
        )
        record(numbers)
        assert numbers.duplicates == 0, held.most_common(3)
        assert numbers.lost == 0, sorted(expected - active - letters)[:5]
        assert active == expected - letters
        assert not (letters & active)
        assert sum(numbers.faults.values()) > 5
        json.dumps(numbers.__dict__)  # the numbers are plain data
