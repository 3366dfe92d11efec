# ruff: noqa: RUF001  (typographic apostrophes are test data)
"""Alerts: when they fire, what they carry (never personal data), and their delivery to a
real local HTTP receiver and a real local SMTP server (aiosmtpd: plain, STARTTLS, SSL)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hrsync.deadletter import DeadLetter, DeadLetterStore
from hrsync.errors import ConfigError
from hrsync_ops.alerts import Alert, configured, evaluate, send, webhook_payload
from hrsync_ops.ops import JobOps, load_ops
from sandbox.directories import make_cert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from opskit import WebhookReceiver, start_smtp

# what a record of a real person looks like; none of it may reach an alert
PERSON = {"ats_candidate_id": "4100000077", "firstName": "Zoë", "lastName": "O’Brien-Łukasz",
          "workEmail": "zoe.obrien@example.com", "payRate": "123456.00 EUR"}  # fmt: skip
SECRETS = ["4100000077", "Zoë", "O’Brien", "Brien", "zoe.obrien", "123456"]


def letters(tmp_path: Path, n: int = 2) -> list[DeadLetter]:
    store = DeadLetterStore(tmp_path / "dl.sqlite", key="")
    for i in range(n):
        store.add(
            plugin="target-bamboohr",
            stream="new_hires",
            record_key=f"41000000{77 + i}",
            record={**PERSON, "ats_candidate_id": f"41000000{77 + i}"},
            # a vendor error that quotes a value: stored, never alerted
            error="field workEmail: BambooHR refused it (409): Duplicate value "
            "zoe.obrien@example.com for O’Brien",
            error_class="http_409",
            integration="ats-to-hris",
        )
    return store.list()


def no_personal_data(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into an alert"


# --- when -------------------------------------------------------------------------------------


def test_failures_alert_at_the_threshold_and_its_multiples_only() -> None:
    ops = JobOps("ats-to-hris", alert_after_failures=3)
    fired = [
        n
        for n in range(1, 10)
        if evaluate(ops, run_id=n, outcome="failed", exit_code=1, consecutive_failures=n)
    ]
    assert fired == [3, 6, 9]
    assert not evaluate(ops, run_id=1, outcome="success", exit_code=0, consecutive_failures=0)


def test_dead_letters_alert_only_for_a_critical_job(tmp_path: Path) -> None:
    new = letters(tmp_path)
    quiet = evaluate(
        JobOps("ats-to-hris"), run_id=1, outcome="success", exit_code=0,
        consecutive_failures=0, new_letters=new,
    )  # fmt: skip
    assert quiet == []
    (alert,) = evaluate(
        JobOps("ats-to-hris", critical=True, owner="people-eng"), run_id=7, outcome="success",
        exit_code=0, consecutive_failures=0, new_letters=new, waiting_letters=5,
    )  # fmt: skip
    assert alert.kind == "dead_letters"
    assert alert.facts["new_dead_letters"] == 2
    assert alert.facts["error_classes"] == {"http_409": 2}
    assert alert.facts["streams"] == {"target-bamboohr/new_hires": 2}
    assert alert.facts["dead_letter_ids"] == [x.id for x in new]
    no_personal_data(json.dumps(webhook_payload(alert)))
    no_personal_data("\n".join(alert.lines()))


# --- where: webhook ---------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver()
    yield hook
    hook.close()


def critical_alert(tmp_path: Path) -> Alert:
    (alert,) = evaluate(
        JobOps("ats-to-hris", critical=True), run_id=1, outcome="success", exit_code=0,
        consecutive_failures=0, new_letters=letters(tmp_path),
    )  # fmt: skip
    return alert


def test_webhook_gets_a_slack_compatible_payload_without_personal_data(
    tmp_path: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERT_URL", receiver.url)
    (delivery,) = send(critical_alert(tmp_path), [{"type": "webhook", "url_env": "ALERT_URL"}])
    assert delivery.ok, delivery.error
    (body,) = receiver.bodies
    assert body["text"] == "hrsync: critical job ats-to-hris has 2 new dead letter(s)"
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context"]
    assert "error classes: http_409 x2" in body["blocks"][1]["text"]["text"]
    assert body["hrsync"]["job"] == "ats-to-hris" and body["hrsync"]["kind"] == "dead_letters"
    no_personal_data(receiver.raw[0].decode("utf-8"))


def test_a_failing_channel_is_reported_and_the_others_still_get_the_alert(
    tmp_path: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = WebhookReceiver(status=500)
    try:
        monkeypatch.setenv("BROKEN_URL", broken.url)
        monkeypatch.setenv("GOOD_URL", receiver.url)
        channels = [
            {"type": "webhook", "url_env": "BROKEN_URL", "name": "broken"},
            {"type": "webhook", "url_env": "UNSET_URL", "name": "unset"},
            {"type": "webhook", "url_env": "GOOD_URL", "name": "good"},
        ]
        results = {d.channel: d for d in send(critical_alert(tmp_path), channels)}
    finally:
        broken.close()
    assert not results["broken"].ok and "500" in str(results["broken"].error)
    assert not results["unset"].ok and "UNSET_URL" in str(results["unset"].error)
    assert results["good"].ok and len(receiver.bodies) == 1


def test_placeholder_channels_are_skipped_not_failed(
    tmp_path: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UNSET_URL", raising=False)
    monkeypatch.setenv("GOOD_URL", receiver.url)
    channels = [
        {"type": "webhook", "url_env": "UNSET_URL", "name": "chat"},
        {"type": "email", "host": "smtp.example.com", "from": "a@b.org", "to": ["c@d.org"]},
        {"type": "webhook", "url_env": "GOOD_URL", "name": "good"},
    ]
    ready, skipped = configured(channels)
    assert [c.get("name") for c in ready] == ["good"]
    assert skipped == ["chat (UNSET_URL is not set)", "email#2 (host smtp.example.com is a "
                       "placeholder)"]  # fmt: skip
    results = send(critical_alert(tmp_path), channels)
    assert [(d.ok, d.skipped) for d in results] == [(False, True), (False, True), (True, False)]
    assert len(receiver.bodies) == 1


def test_the_shipped_ops_file_fails_nothing_out_of_the_box(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """hrsync.yml as shipped, with none of its environment variables set: every channel is
    a placeholder, skipped (one warning in `hrsync run`), none tried and failed."""
    root = Path(__file__).resolve().parents[2]
    ops = load_ops(root / "hrsync.yml")
    for channel in ops.channels:
        for key in ("url_env", "username_env", "password_env"):
            if channel.get(key):
                monkeypatch.delenv(str(channel[key]), raising=False)
    ready, skipped = configured(ops.channels)
    assert ready == [] and len(skipped) == len(ops.channels) >= 1


def test_plain_http_webhook_to_a_real_host_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERT_URL", "http://hooks.example.com/services/T0/B0/x")
    (delivery,) = send(critical_alert(tmp_path), [{"type": "webhook", "url_env": "ALERT_URL"}])
    assert not delivery.ok and "loopback" in str(delivery.error)


# --- where: e-mail ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("smtp-tls"))


def email_channel(port: int, **extra: object) -> dict[str, object]:
    return {"type": "email", "host": "127.0.0.1", "port": port, "from": "hrsync@example.com",
            "to": ["oncall@example.com", "owner@example.com"], **extra}  # fmt: skip


def test_email_over_starttls_with_login_from_the_environment(
    tmp_path: Path, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    controller, box = start_smtp(cert=cert[0], key=cert[1], user="alerts", password="s3cret")
    try:
        monkeypatch.setenv("SMTP_USER", "alerts")
        monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
        channel = email_channel(
            controller.port, security="starttls", ca_file=str(cert[0]),
            username_env="SMTP_USER", password_env="SMTP_PASSWORD",
        )  # fmt: skip
        (delivery,) = send(critical_alert(tmp_path), [channel])
    finally:
        controller.stop()
    assert delivery.ok, delivery.error
    assert box.logins == ["alerts"]
    (message,) = box.messages
    assert message["Subject"] == "hrsync: critical job ats-to-hris has 2 new dead letter(s)"
    assert message["To"] == "oncall@example.com, owner@example.com"
    no_personal_data(box.raw[0].decode("utf-8"))


def test_email_over_implicit_tls_and_an_untrusted_certificate_is_refused(
    tmp_path: Path, cert: tuple[Path, Path]
) -> None:
    controller, box = start_smtp(cert=cert[0], key=cert[1], implicit_tls=True)
    try:
        trusted = email_channel(controller.port, security="ssl", ca_file=str(cert[0]))
        ok = send(critical_alert(tmp_path), [trusted])
        untrusted = send(critical_alert(tmp_path), [email_channel(controller.port, security="ssl")])
    finally:
        controller.stop()
    assert ok[0].ok, ok[0].error
    assert not untrusted[0].ok and "CERTIFICATE_VERIFY_FAILED" in str(untrusted[0].error)
    assert len(box.messages) == 1


def test_email_to_a_plain_local_relay(tmp_path: Path) -> None:
    controller, box = start_smtp()
    try:
        relay = email_channel(controller.port, security="none")
        (delivery,) = send(critical_alert(tmp_path), [relay])
    finally:
        controller.stop()
    assert delivery.ok, delivery.error
    assert "dead letter ids:" in box.messages[0].get_payload()


# --- the ops file -------------------------------------------------------------------------------


def test_ops_file_is_validated_and_names_the_bad_key(tmp_path: Path) -> None:
    path = tmp_path / "hrsync.yml"
    path.write_text(
        "jobs:\n  ats-to-hris: {owner: people-eng, critical: yes, expected_interval: 26h}\n"
        "alerts:\n  channels:\n    - {type: webhook, url_env: HOOK}\n"
    )
    ops = load_ops(path)
    job = ops.job("ats-to-hris")
    assert (job.owner, job.critical, job.expected_interval.total_seconds()) == (
        "people-eng", True, 26 * 3600,
    )  # fmt: skip
    assert ops.job("other").alert_after_failures == 3
    path.write_text("jobs:\n  ats-to-hris: {expected_interval: daily}\n")
    with pytest.raises(ConfigError, match=r"hrsync.yml: jobs.ats-to-hris.expected_interval"):
        load_ops(path)
    path.write_text("alerts:\n  channels:\n    - {type: webhook, url: https://hooks.x/T0}\n")
    with pytest.raises(ConfigError, match=r"alerts.channels.0"):
        load_ops(path)  # a URL in the file (a secret) instead of an env var name


def test_the_projects_own_ops_file_is_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    ops = load_ops(root / "hrsync.yml")
    assert ops.jobs, "hrsync.yml lists the jobs"
