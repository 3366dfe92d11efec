"""`meltano run hris-to-benefits` end to end: BambooHR sandbox -> map-hr -> target-benefits-834
-> a real sshd (the carrier's SFTP drop), PGP-encrypted to a real GnuPG key, pyx12-valid."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from tests import projectkit

from hrsync.audit import AuditLog
from sandbox.demo import meltano_env
from sandbox.pgp import Recipient
from sandbox.server import Sandbox
from sandbox.sftp import Sshd, start_sshd
from target_benefits_834.document import validate

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
MELTANO = projectkit.MELTANO
TODAY = dt.datetime.now(dt.UTC).date()

Env = tuple[Sandbox, dict[str, str], Sshd, Recipient]


@pytest.fixture(scope="module")
def benefits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("benefits-e2e")
    sshd = start_sshd(workdir / "sshd")
    recipient = Recipient.create("enrolments@carrier.example")
    try:
        with Sandbox(employees=40, vendors=("bamboohr",)) as sb:
            env = meltano_env(sb, workdir) | {
                "HRSYNC_INTEGRATION": "hris-to-benefits",
                "HRSYNC_DLQ_PATH": str(workdir / "dlq.sqlite"),
                "HRSYNC_TRANSFER_LEDGER": str(workdir / "transfers.sqlite"),
                "TARGET_BENEFITS_834_SENDER_ID": "ACMEHR",
                "TARGET_BENEFITS_834_RECEIVER_ID": "BLUEPRAIRIE",
                "TARGET_BENEFITS_834_USAGE_INDICATOR": "T",
                "TARGET_BENEFITS_834_SPONSOR_NAME": "Acme Inc",
                "TARGET_BENEFITS_834_SPONSOR_ID": "123456789",
                "TARGET_BENEFITS_834_PAYER_NAME": "Blue Prairie Health",
                "TARGET_BENEFITS_834_PAYER_ID": "987654321",
                "TARGET_BENEFITS_834_WORK_DIR": str(workdir / "work"),
                "TARGET_BENEFITS_834_VALIDATION_WORKERS": "1",
                "TARGET_BENEFITS_834_SFTP_HOST": "127.0.0.1",
                "TARGET_BENEFITS_834_SFTP_PORT": str(sshd.port),
                "TARGET_BENEFITS_834_SFTP_USERNAME": sshd.username,
                "TARGET_BENEFITS_834_SFTP_PRIVATE_KEY_PATH": str(sshd.client_key_path),
                "TARGET_BENEFITS_834_SFTP_KNOWN_HOSTS_PATH": str(
                    sshd.write_known_hosts(workdir / "known_hosts")
                ),
                "TARGET_BENEFITS_834_SFTP_REMOTE_DIR": str(sshd.upload_dir),
                "TARGET_BENEFITS_834_PGP_RECIPIENT_PUBLIC_KEY": recipient.public_key,
            }
            yield sb, env, sshd, recipient
    finally:
        sshd.stop()
        recipient.close()


def run_job(env: dict[str, str], *args: str) -> None:
    proc = subprocess.run(
        [MELTANO, "run", *args, "hris-to-benefits"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def arrived(sshd: Sshd) -> list[Path]:
    return sorted(p for p in sshd.upload_dir.iterdir() if not p.name.startswith("."))


def subscribers(text: str) -> dict[str, list[str]]:
    """Subscriber id (REF*0F) -> the INS segments of that family, in order."""
    out: dict[str, list[str]] = {}
    ins = ""
    for seg in (s.strip() for s in text.split("~")):
        if seg.startswith("INS*"):
            ins = seg
        elif seg.startswith("REF*0F*") and ins:
            out.setdefault(seg.split("*")[2], []).append(ins)
            ins = ""
    return out


def test_enrolment_file_reaches_the_carrier_then_a_marriage(benefits: Env, tmp_path: Path) -> None:
    sb, env, sshd, recipient = benefits
    run_job(env, "--full-refresh")
    files = arrived(sshd)
    assert len(files) == 1 and files[0].suffix == ".pgp"
    text = recipient.decrypt_file(files[0]).decode("ascii")
    plain = tmp_path / "first.x12"
    plain.write_text(text, encoding="ascii")
    checked = validate(plain, full=True)  # pyx12 on every segment
    assert checked.valid, checked.errors
    # compare with the source: every family covered today, bar the unspellable names
    app = sb.apps["bamboohr"]
    expected = {
        str(p.employee_id)
        for p in sb.world.people()
        if any(
            e.end_date is None or e.end_date >= TODAY
            for e in app.benefits.elections(p.employee_id)  # type: ignore[attr-defined]
        )
    } - {"4", "6", "24"}
    families = subscribers(text)
    assert set(families) == expected
    assert all(ins.split("*")[3] == "021" for insses in families.values() for ins in insses)
    # nothing the carrier does not need left the HRIS
    assert "GRP-4410" in text and "191.00" not in text  # group number yes, cost sharing no
    events = AuditLog.read(env["HRSYNC_AUDIT_LOG"])
    sent = [e for e in events if e["destination"].startswith("sftp://")]
    assert any(e["outcome"] == "sent" for e in sent)
    assert all(e["integration"] == "hris-to-benefits" for e in sent)
    assert not any("ssn" in str(e.get("detail")).lower() for e in events)

    # a marriage in the HRIS: the next (incremental) run sends the change, and only it
    k = next(
        p.employee_id
        for p in sb.world.people(29)
        if p.termination_date is None
        and app.benefits.elections(p.employee_id)  # type: ignore[attr-defined]
        and not app.benefits.dependants(p.employee_id)  # type: ignore[attr-defined]
    )
    wedding = TODAY - dt.timedelta(days=2)
    response = requests.post(
        f"{sb.bamboohr_url}/_sandbox/bamboohr/life_events",
        json={"employeeId": k, "type": "marriage", "date": wedding.isoformat(),
              "firstName": "Renée", "lastName": "O'Connor"},
        timeout=10,
    )  # fmt: skip
    assert response.status_code == 201
    run_job(env)
    files = arrived(sshd)
    assert len(files) == 2
    change = recipient.decrypt_file(files[1]).decode("ascii")
    family = subscribers(change)
    assert list(family) == [str(k)]
    assert family[str(k)][0].startswith("INS*Y*18*001*32")
    assert family[str(k)][1].startswith("INS*N*01*021*32")
    assert "NM1*IL*1*OCONNOR*RENEE" in change

    # nothing changed since: nothing is sent
    run_job(env)
    assert len(arrived(sshd)) == 2
