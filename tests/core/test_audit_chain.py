"""The audit log is tamper-evident: a hash chain with keyed checkpoints, across rotation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hrsync import audit, subject
from hrsync.audit import AuditLog, audit_files, read_all, verify
from hrsync_ops.cli import main

KEY = "audit-checkpoint-key-for-tests-0123456789"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HRSYNC_AUDIT_LOG", "HRSYNC_INTEGRATION", "MELTANO_LOADER_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HRSYNC_AUDIT_KEY", KEY)
    monkeypatch.setenv("MAP_HR_HMAC_KEY", "subject-key-for-tests-0123456789")
    monkeypatch.delenv("HRSYNC_AUDIT_MAX_BYTES", raising=False)


def write(path: Path, n: int, start: int = 0) -> None:
    log = AuditLog(path, integration="hris-to-iam")
    for i in range(start, start + n):
        log.record(
            stream="workers",
            record_key=str(i),
            fields=["given_name", "work_email"],
            destination="https://scim.example.com/v2",
            outcome="updated",
            employee_id=str(i),
        )
    log.close()


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_an_untouched_log_verifies_across_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("HRSYNC_AUDIT_MAX_BYTES", "20000")
    write(path, 450)
    files = audit_files(path)
    assert len(files) >= 4 and files[-1] == path  # rotated ones first, oldest first
    result = verify(path)
    assert result.ok, [str(p) for p in result.problems]
    # about every 100 lines, and one closing each rotated file
    assert result.keyed and result.checkpoints >= 4 + len(files) - 1
    assert [e["record_key"] for e in read_all(path)] == [str(i) for i in range(450)]
    seqs = [json.loads(x)["seq"] for f in files for x in lines(f)]
    assert seqs == list(range(1, len(seqs) + 1))  # one counter across the files
    assert main(["audit", "verify", "--path", str(path)]) == 0


def test_a_removed_line_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 30)
    text = lines(path)
    del text[11]  # the 12th line
    path.write_text("".join(text), encoding="utf-8")
    (problem,) = verify(path).problems
    assert (problem.file, problem.line, problem.seq) == ("audit.jsonl", 12, 13)
    assert "removed" in problem.reason
    assert main(["audit", "verify", "--path", str(path)]) == 1
    assert (
        "TAMPERED audit.jsonl:12 (seq 13): lines removed or reordered before it"
        in capsys.readouterr().out
    )


def test_an_edited_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 30)
    text = lines(path)
    text[6] = text[6].replace('"updated"', '"unchanged"')
    path.write_text("".join(text), encoding="utf-8")
    (problem,) = verify(path).problems
    assert (problem.line, problem.seq) == (7, 7) and "edited" in problem.reason


def test_swapped_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 30)
    text = lines(path)
    text[20], text[21] = text[21], text[20]
    path.write_text("".join(text), encoding="utf-8")
    (problem,) = verify(path).problems
    assert problem.line == 21 and problem.seq == 22


def test_a_rewritten_chain_fails_its_keyed_checkpoints(tmp_path: Path) -> None:
    """Whoever edits a line and recomputes every hash after it still lacks the key."""
    path = tmp_path / "audit.jsonl"
    write(path, 150)  # a checkpoint at seq 100
    objs = [json.loads(x) for x in lines(path)]
    objs[3]["outcome"] = "skipped"
    prev = ""
    for obj in objs:
        obj["prev"] = prev
        obj["hash"] = audit.line_hash(obj)
        prev = obj["hash"]
    path.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")
    (problem,) = verify(path).problems
    assert problem.seq == 101 and "MAC" in problem.reason


def test_a_removed_rotated_file_is_detected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("HRSYNC_AUDIT_MAX_BYTES", "20000")
    write(path, 300)
    oldest = audit_files(path)[0]
    oldest.unlink()
    (problem,) = verify(path).problems
    assert problem.line == 1 and oldest.name in problem.reason


def test_concurrent_processes_keep_one_valid_chain(tmp_path: Path) -> None:
    """Several plugins of a pipeline append to one file: the lock keeps the chain linear."""
    path = tmp_path / "audit.jsonl"
    script = (
        "import sys\n"
        "from hrsync.audit import AuditLog\n"
        "log = AuditLog(sys.argv[1], integration='p')\n"
        "for i in range(250):\n"
        "    log.record(stream='s', record_key=f'{sys.argv[2]}-{i}', fields=['a'],\n"
        "               destination='d', outcome='updated')\n"
    )
    env = {"HRSYNC_AUDIT_MAX_BYTES": "60000", "HRSYNC_AUDIT_KEY": KEY, "PATH": ""}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(path), str(n)], env=env)
        for n in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert len(read_all(path)) == 1000
    result = verify(path)
    assert result.ok, [str(p) for p in result.problems]
    assert len(result.files) > 1


def test_events_name_the_person_by_a_keyed_reference_only(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, integration="ats-to-hris")
    log.record(
        stream="bamboohr_new_hires",
        record_key="4000000123",
        fields=["firstName"],
        destination="bamboohr",
        outcome="created",
        candidate_id="4000000123",
        employee_id="2042",
    )
    (event,) = AuditLog.read(path)
    assert event["subject"] == subject.employee_ref("2042")
    assert event["links"] == [subject.candidate_ref("4000000123")]
    # the analytics pseudonym of the employee gives the same reference
    pseudonym = subject.analytics_pseudonym("2042")
    assert subject.pseudonym_ref(pseudonym) == event["subject"]
    assert "2042" not in json.dumps({k: v for k, v in event.items() if k != "record_key"})


def test_a_log_written_before_chaining_continues_as_a_chain(tmp_path: Path) -> None:
    """An upgraded installation: the old unchained lines are reported, not failed; the chain
    starts from the last of them, and an unchained line after that is tampering."""
    path = tmp_path / "audit.jsonl"
    old = {
        "ts": "2025-01-01T00:00:00.000+00:00",
        "integration": "x",
        "stream": "s",
        "record_key": "1",
        "fields": [],
        "destination": "d",
        "outcome": "created",
        "detail": None,
    }
    path.write_text("".join(json.dumps({**old, "record_key": str(i)}) + "\n" for i in range(3)))
    write(path, 5)
    result = verify(path)
    assert result.ok and "first 3 line(s) were written before the chain" in result.warnings[0]
    text = lines(path)
    text.insert(5, json.dumps(old) + "\n")
    path.write_text("".join(text), encoding="utf-8")
    (problem,) = verify(path).problems
    assert problem.line == 6 and "no hash" in problem.reason


def test_a_run_that_rotates_the_log_still_counts_what_it_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hrsync_ops.runs import audit_offset, moved_records

    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("HRSYNC_AUDIT_MAX_BYTES", "40000")  # ~65 lines
    write(path, 40)  # an earlier run
    assert audit_files(path) == [path]
    offset = audit_offset(path)
    write(path, 30, start=40)  # this run: the file rotates on the way
    assert len(audit_files(path)) == 2
    assert moved_records("hris-to-iam", offset, path) == {"updated": 30}


def _strip(line: str) -> dict[str, object]:
    """A line without what differs run to run (its time, and so its hashes)."""
    obj = json.loads(line)
    return {k: v for k, v in obj.items() if k not in ("ts", "prev", "hash", "mac")}


def test_buffered_lines_make_the_same_chain_a_chunk_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, chunked = tmp_path / "one" / "audit.jsonl", tmp_path / "chunked" / "audit.jsonl"
    write(one, 250)
    log = AuditLog(chunked, integration="hris-to-iam")
    writes: list[int] = []
    real_write = log._write
    monkeypatch.setattr(log, "_write", lambda ls: (writes.append(len(ls)), real_write(ls)))
    with log.buffered(max_lines=64):
        for i in range(250):
            log.record(
                stream="workers",
                record_key=str(i),
                fields=["given_name", "work_email"],
                destination="https://scim.example.com/v2",
                outcome="updated",
                employee_id=str(i),
            )
            if i == 99:
                log.flush()  # a writer's chunk acknowledged: its lines are in the file
                assert log.pending == 0 and len(read_all(chunked)) == 100
        assert log.pending == 250 - 100 - 128  # two chunks of 64 went on their own
    assert log.pending == 0
    log.close()
    # 64, 36 (flushed), 64, 64, the rest on leaving; the checkpoints (seq 100 and 200) ride
    # with their chunk
    assert writes == [64, 36 + 1, 64, 64 + 1, 22]
    assert [_strip(x) for x in lines(chunked)] == [_strip(x) for x in lines(one)]
    result = verify(chunked)
    assert result.ok and result.keyed and result.checkpoints == 2


def test_buffered_lines_are_written_when_the_run_fails(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, integration="hris-to-iam")
    with pytest.raises(SystemExit), log.buffered():
        log.record(stream="w", record_key="1", fields=["a"], destination="d", outcome="created")
        raise SystemExit(143)  # a signal's exit, after a write was acknowledged
    assert [e["record_key"] for e in read_all(path)] == ["1"]
    with pytest.raises(ValueError, match="max_lines must be 1 or more, got 0"), log.buffered(0):
        pass
    log.close()
