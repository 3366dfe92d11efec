"""Pipelined writes (python-ldap: many requests in flight per connection, results taken in
order): every result belongs to its own record, and a connection lost with requests in
flight loses and doubles nothing. Against a real slapd; the second test puts a loopback TCP
relay between the target and slapd that swallows the answers of the connection it has."""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from ldap_testkit import (
    ADMIN,
    DISABLED,
    PASSWORD,
    PEOPLE,
    RunTarget,
    Slapd,
    audit_lines,
    openldap_config,
    person,
)

from hrsync.deadletter import DeadLetterStore
from target_ldap import directory as directory_module
from target_ldap.config import parse_settings
from target_ldap.directory import Directory, DirectoryError, Result


def test_each_result_is_handed_to_its_own_record(
    slapd: Slapd, tmp_path: Path, run_target: RunTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 3 connections x 4 in flight for 120 creates: the window wraps many times
    monkeypatch.setattr(directory_module, "WINDOW", 4)
    bad = {f"{7000 + i}" for i in range(120) if i % 7 == 3}
    records = [
        person(
            f"{7000 + i}",
            "Pat",
            f"Tester{i}",
            # a non-ASCII mail: slapd refuses the entry (invalidAttributeSyntax)
            work_email=f"pät.tester{i}@example.com" if f"{7000 + i}" in bad else None,
        )
        for i in range(120)
    ]
    config = openldap_config(slapd, tmp_path, max_connections=3, group_rules=[])
    target = run_target(config, records)
    assert {f.employee_id for f in target.summary.failures} == bad
    letters = {x.record_key: x for x in DeadLetterStore().list()}
    assert set(letters) == bad
    for eid, letter in letters.items():
        assert letter.record["employee_id"] == eid
        assert letter.error_class == "ldap_21_invalidAttributeSyntax"
        assert "failed on mail" in letter.error
    managed = [a["employeeNumber"][0] for a in slapd.entries().values() if "employeeNumber" in a]
    assert sorted(managed) == sorted({r["employee_id"] for r in records} - bad)
    outcomes = {(a["record_key"], a["outcome"]) for a in audit_lines() if "record_key" in a}
    assert outcomes == {(e, "created") for e in managed} | {(e, "failed") for e in bad}


class SwallowingRelay:
    """Loopback TCP relay to slapd. ``swallow()``: from now on the connections it already
    relays still carry requests to slapd, but slapd's answers are dropped (a network that
    fails while the requests are being executed); new connections work normally."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.mute: set[socket.socket] = set()
        self.live: list[socket.socket] = []
        self.mute_new = False  # set: new connections are swallowed too (a server gone dumb)
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self.live.append(server)
            if self.mute_new:
                self.mute.add(server)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        with client, server:
            while not self.stopping:
                ready, _, _ = select.select([client, server], [], [], 0.2)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        server.sendall(data)
                    elif server not in self.mute:
                        client.sendall(data)

    def swallow(self) -> None:
        self.mute.update(self.live)

    def stop(self) -> None:
        self.stopping = True
        self.listener.close()


@pytest.fixture
def relay(slapd: Slapd) -> Iterator[SwallowingRelay]:
    r = SwallowingRelay(slapd.port)
    yield r
    r.stop()


def relayed(relay: SwallowingRelay) -> Directory:
    return Directory(
        parse_settings(
            {
                "url": f"ldap://127.0.0.1:{relay.port}",
                "bind_dn": ADMIN,
                "bind_password": PASSWORD,
                "base_dn": PEOPLE,
                "disabled_ou": DISABLED,
                "max_connections": 1,
                "timeout": 1,
            }
        )
    )


def add_of(directory: Directory, uid: str) -> directory_module.Op:
    return directory.add_op(
        f"uid={uid},{PEOPLE}",
        ["inetOrgPerson"],
        {"uid": [uid], "cn": [uid], "sn": ["Relay"], "employeeNumber": [uid]},
    )


def test_a_connection_lost_mid_pipeline_loses_and_doubles_nothing(
    slapd: Slapd, relay: SwallowingRelay, caplog: pytest.LogCaptureFixture
) -> None:
    directory = relayed(relay)
    before = slapd.write_count()
    uids = [f"relay{i}" for i in range(200)]

    def op_of(uid: str) -> directory_module.Op:
        if uid == "relay120":  # requests 120.. reach slapd, their answers never come back
            relay.swallow()
        return add_of(directory, uid)

    results: list[tuple[str, Result]] = []
    with caplog.at_level(logging.WARNING, logger="target_ldap"):
        directory.pipeline(uids, op_of, lambda uid, r: results.append((uid, r)))
    directory.close()
    assert "reconnecting" in caplog.text
    assert [uid for uid, _ in results] == uids  # in order, each once
    assert [str(r) for _, r in results if not r.ok] == []
    found = {a["uid"][0] for a in slapd.entries().values() if "uid" in a} & set(uids)
    assert found == set(uids)
    assert slapd.write_count() - before == len(uids)  # each added exactly once


def test_a_second_loss_stops_the_run(slapd: Slapd, relay: SwallowingRelay) -> None:
    directory = relayed(relay)
    results: list[str] = []

    def op_of(uid: str) -> directory_module.Op:
        if uid == "gone10":  # from here on no answer comes back, on any connection
            relay.mute_new = True
            relay.swallow()
        return add_of(directory, uid)

    with pytest.raises(DirectoryError, match=r"cannot connect|lost"):
        directory.pipeline(
            [f"gone{i}" for i in range(40)], op_of, lambda uid, r: results.append(uid)
        )
    directory.close()
    assert results == [f"gone{i}" for i in range(len(results))]  # in order, none after
    found = {a["uid"][0] for a in slapd.entries().values() if a.get("sn") == ["Relay"]}
    assert set(results) <= found  # each answered add is there
