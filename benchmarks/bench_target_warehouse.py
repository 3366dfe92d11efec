"""target-warehouse vs a plain DuckDB ``executemany`` upsert loop, loading N survey answers.

    .venv/bin/python benchmarks/bench_target_warehouse.py [--records 100000] [--before DIR]
        [--rounds 3] [--executemany-records 2000]

Contenders, same run, same Singer file (answers: 8 columns, a three-part key, every tenth
record an update of an earlier key), each into a fresh DuckDB file:

- ``executemany INSERT OR REPLACE``: what one writes by hand with the duckdb Python API: a
  table with a primary key, records parsed with orjson, ``executemany`` per 10,000 rows. No
  validation, no dead letters. So slow (per-row binding) that it runs on a slice of
  ``--executemany-records`` and its time is scaled to N (by rate).
- ``bare DuckDB bulk load``: the records through DuckDB's JSON reader and one
  ``INSERT OR REPLACE``: the floor for a DuckDB loader (no validation, no dead letters), in
  the benchmark's process (the goal's peer), and once more as a process of its own (Python,
  orjson and duckdb start-up paid, as a target pays its own).
- ``target-warehouse``: the real console script reading the file (singer-sdk parsing and
  validation, batch in memory, DuckDB JSON reader, TRY_CAST check, de-duplicated upsert,
  audit).
- ``target-warehouse, validate_records false``: the same without singer-sdk's per-record
  JSON-schema validation (values that do not fit a column are still dead-lettered).
- ``read + parse only``: orjson over the file (the floor for any Python Singer target).
- with ``--before DIR`` (DIR: ``git archive <commit> core targets | tar -x -C DIR``), the
  target as it was at that commit, run in the same way (``PYTHONPATH`` on DIR's packages), so
  a speed-up is measured before and after in one run.

Every database is read back (rows, distinct keys) so a fast wrong answer cannot win; the
target's peak RSS is measured at N and 4N (memory must stay flat as input grows).
Results: a table on stdout and benchmarks/results/target_warehouse.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import duckdb
import orjson

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "target_warehouse.md"
BIN = Path(sys.executable).parent
BATCH = 10_000
CPU: dict[str, float] = {}  # database stem -> CPU seconds (user + system) of its run

SCHEMA = {
    "type": "object",
    "properties": {
        "response_id": {"type": "string"},
        "question_id": {"type": "string"},
        "answer_position": {"type": "integer"},
        "survey_id": {"type": "string"},
        "row_id": {"type": ["string", "null"]},
        "choice_id": {"type": ["string", "null"]},
        "choice_position": {"type": ["integer", "null"]},
        "date_modified": {"type": "string", "format": "date-time"},
    },
}
KEYS = ["response_id", "question_id", "answer_position"]


def write_feed(path: Path, n: int) -> int:
    """N records, every tenth re-sends an earlier key; returns the number of distinct keys."""
    keys = set()
    with path.open("wb") as fh:
        fh.write(
            orjson.dumps(
                {"type": "SCHEMA", "stream": "answers", "schema": SCHEMA, "key_properties": KEYS}
            )
            + b"\n"
        )
        for i in range(n):
            j = i // 2 if i % 10 == 9 else i
            rec = {
                "response_id": str(1_100_000_000 + j // 7),
                "question_id": str(700_000_100 + j % 7),
                "answer_position": 1,
                "survey_id": "500000001",
                "row_id": None if j % 7 != 5 else "800000106",
                "choice_id": str(900_000_000 + j % 5),
                "choice_position": 1 + (i % 5),
                "date_modified": "2026-03-01T10:00:00+00:00",
            }
            keys.add((rec["response_id"], rec["question_id"]))
            fh.write(orjson.dumps({"type": "RECORD", "stream": "answers", "record": rec}) + b"\n")
        fh.write(b'{"type": "STATE", "value": {"bookmarks": {}}}\n')
    return len(keys)


def executemany_loop(feed: Path, db: Path) -> None:
    con = duckdb.connect(str(db))
    cols = list(SCHEMA["properties"])
    con.execute(
        "CREATE TABLE answers (response_id VARCHAR, question_id VARCHAR, answer_position BIGINT, "
        "survey_id VARCHAR, row_id VARCHAR, choice_id VARCHAR, choice_position BIGINT, "
        "date_modified TIMESTAMPTZ, PRIMARY KEY (response_id, question_id, answer_position))"
    )
    sql = f"INSERT OR REPLACE INTO answers VALUES ({', '.join('?' * len(cols))})"  # noqa: S608
    batch: dict[tuple[str, str, int], list[object]] = {}
    with feed.open("rb") as fh:
        for line in fh:
            msg = orjson.loads(line)
            if msg["type"] != "RECORD":
                continue
            rec = msg["record"]
            batch[(rec["response_id"], rec["question_id"], rec["answer_position"])] = [
                rec.get(c) for c in cols
            ]
            if len(batch) >= BATCH:
                con.executemany(sql, list(batch.values()))
                batch.clear()
    if batch:
        con.executemany(sql, list(batch.values()))
    con.close()


def bare_bulk(feed: Path, db: Path) -> None:
    """DuckDB's own JSON reader over the records, one INSERT OR REPLACE: no validation,
    no dead letters, no audit (the floor for a DuckDB loader)."""
    records = db.with_suffix(".records.jsonl")
    with feed.open("rb") as fh, records.open("wb") as out:
        for line in fh:
            msg = orjson.loads(line)
            if msg["type"] == "RECORD":
                out.write(orjson.dumps(msg["record"]) + b"\n")
    con = duckdb.connect(str(db))
    con.execute(
        "CREATE TABLE answers (response_id VARCHAR, question_id VARCHAR, answer_position BIGINT, "
        "survey_id VARCHAR, row_id VARCHAR, choice_id VARCHAR, choice_position BIGINT, "
        "date_modified TIMESTAMPTZ, PRIMARY KEY (response_id, question_id, answer_position))"
    )
    con.execute(
        "INSERT OR REPLACE INTO answers SELECT * FROM (SELECT * FROM read_json(?, "
        "format='newline_delimited')) QUALIFY row_number() OVER (PARTITION BY response_id, "
        "question_id, answer_position ORDER BY 1) = 1",
        [str(records)],
    )
    con.close()


def bare_process(feed: Path, db: Path) -> None:
    """The bare bulk load as a process of its own (Python, orjson and duckdb start-up paid, as
    a target pays its own): where the start-up stands against the load."""
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "import bench_target_warehouse as b; b.bare_bulk(Path(sys.argv[2]), Path(sys.argv[3]))"
    )
    wrapper = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "r = resource.getrusage(resource.RUSAGE_CHILDREN); print(r.ru_utime + r.ru_stime)"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, "-c", code, str(HERE), str(feed), str(db)],
        capture_output=True,
        check=True,
        text=True,
    )
    CPU[db.stem] = float(out.stdout.split()[-1])


def target(
    feed: Path, db: Path, workdir: Path, before: Path | None = None, **settings: object
) -> int:
    """Run the target (this tree's console script, or ``before``'s code); returns the child's
    peak RSS in KiB."""
    config = workdir / f"config-{db.stem}.json"
    config.write_bytes(orjson.dumps({"database": str(db), **settings}))
    env = {
        **os.environ,
        "HRSYNC_AUDIT_LOG": str(workdir / "audit.jsonl"),
        "HRSYNC_DLQ_PATH": str(workdir / "dlq.sqlite"),
    }
    command = [str(BIN / "target-warehouse")]
    if before is not None:
        env["PYTHONPATH"] = f"{before / 'core'}:{before / 'targets' / 'target-warehouse'}"
        command = [sys.executable, "-m", "target_warehouse.target"]
    # a wrapper process per run, so each peak RSS is that run's own
    wrapper = (
        "import resource, subprocess, sys; "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL); "
        "r = resource.getrusage(resource.RUSAGE_CHILDREN); "
        "print(r.ru_maxrss, r.ru_utime + r.ru_stime)"
    )
    with feed.open("rb") as stdin:
        out = subprocess.run(
            [sys.executable, "-c", wrapper, *command, "--config", str(config)],
            stdin=stdin,
            capture_output=True,
            env=env,
            check=True,
            text=True,
        )
    rss, cpu = out.stdout.split()
    CPU[db.stem] = float(cpu)
    return int(rss)


def parse_only(feed: Path) -> None:
    with feed.open("rb") as fh:
        for line in fh:
            orjson.loads(line)


def read_back(db: Path) -> tuple[int, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT count(*), count(DISTINCT (response_id, question_id, answer_position)) "
            "FROM answers"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


RSS: list[int] = []  # peak RSS (KiB) of each run of this tree's target (validation on)


def _rss(kib: int) -> None:
    RSS.append(kib)


def _ignore(_value: object) -> None:
    pass


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def timed_cpu(fn: t.Callable[..., None], *args: Path) -> float:
    """CPU seconds of one in-process call (every thread of this process)."""
    cpu = time.process_time()
    fn(*args)
    return time.process_time() - cpu


def _cpu(seconds: float, db: Path) -> None:
    CPU[db.stem] = seconds


def timed(fn: object, *args: object) -> float:
    start, cpu = time.perf_counter(), time.process_time()
    fn(*args)  # type: ignore[operator]
    CPU[str(args[-1])] = time.process_time() - cpu  # every thread of this process
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--executemany-records", type=int, default=2_000)
    parser.add_argument("--before", type=Path, help="an earlier tree (core/, targets/) to compare")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each contender (median)")
    args = parser.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory(prefix="bench-warehouse-") as tmp:
        work = Path(tmp)
        feed = work / "feed.jsonl"
        distinct = write_feed(feed, n)
        rows: list[tuple[str, float, str, float]] = []  # name, seconds, rows, CPU seconds
        base = timed(parse_only, feed)
        rows.append(("read + parse only (orjson)", base, "-", CPU[str(feed)]))
        # the executemany loop is ~100x slower: measured on a slice, compared by rate
        small_n = min(n, args.executemany_records)
        small = work / "small.jsonl"
        small_distinct = write_feed(small, small_n)
        t_many = timed(executemany_loop, small, work / "many.duckdb") * n / small_n
        got = read_back(work / "many.duckdb")
        assert got == (small_distinct, small_distinct), got
        cpu_many = CPU[str(work / "many.duckdb")] * n / small_n
        # every other contender runs --rounds times, in turn (a shared machine's load drifts:
        # each round sees every contender under about the same load); medians are reported
        contenders: list[tuple[str, t.Callable[[Path], None]]] = [
            ("bare DuckDB bulk load (read_json + INSERT OR REPLACE)",
             lambda db: _cpu(timed_cpu(bare_bulk, feed, db), db)),
            ("bare DuckDB bulk load, own process (start-up included)",
             lambda db: bare_process(feed, db)),
            ("target-warehouse (console script)", lambda db: _rss(target(feed, db, work))),
            ("target-warehouse, validate_records false",
             lambda db: _ignore(target(feed, db, work, validate_records=False))),
        ]  # fmt: skip
        if args.before is not None:
            before = args.before
            contenders += [
                ("target-warehouse before (`--before`)",
                 lambda db: _ignore(target(feed, db, work, before))),
                ("target-warehouse before (`--before`), validate_records false",
                 lambda db: _ignore(target(feed, db, work, before, validate_records=False))),
            ]  # fmt: skip
        walls: dict[str, list[float]] = {name: [] for name, _ in contenders}
        cpus: dict[str, list[float]] = {name: [] for name, _ in contenders}
        for r in range(args.rounds):
            for i, (name, run) in enumerate(contenders):
                db = work / f"c{i}r{r}.duckdb"
                start = time.perf_counter()
                run(db)
                walls[name].append(time.perf_counter() - start)
                cpus[name].append(CPU[db.stem])
                got = read_back(db)
                assert got == (distinct, distinct), (name, got)
        bare_name = contenders[0][0]
        t_bare, cpu_bare = _median(walls[bare_name]), _median(cpus[bare_name])
        rows.append((bare_name, t_bare, str(distinct), cpu_bare))
        rows.append((contenders[1][0], _median(walls[contenders[1][0]]), str(distinct),
                     _median(cpus[contenders[1][0]])))  # fmt: skip
        rows.append((f"executemany INSERT OR REPLACE (on {small_n:,}, scaled)", t_many,
                     str(small_distinct), cpu_many))  # fmt: skip
        for name, _ in contenders[2:]:
            rows.append((name, _median(walls[name]), str(distinct), _median(cpus[name])))
        rss = max(RSS)
        big = work / "feed4.jsonl"
        write_feed(big, 4 * n)
        rss4 = target(big, work / "target4.duckdb", work)
    lines = [
        f"# target-warehouse benchmark: {n:,} survey answers into DuckDB",
        "",
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"duckdb {duckdb.__version__}; {distinct:,} distinct keys (every tenth record an update).",
        "",
        "| contender | seconds | records/s | rows read back | vs executemany | vs bare bulk "
        "| CPU s | vs bare bulk (CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, seconds, back, cpu in rows:
        lines.append(
            f"| {name} | {seconds:.2f} | {n / seconds:,.0f} | {back} | {t_many / seconds:.2f}x "
            f"| {t_bare / seconds:.2f}x | {cpu:.2f} | {cpu_bare / cpu:.2f}x |"
        )
    lines += [
        "",
        f"Peak RSS of target-warehouse: {rss / 1024:.0f} MB at {n:,} records, "
        f"{rss4 / 1024:.0f} MB at {4 * n:,} (one batch of 10,000 rows in memory at a time: "
        "flat as the input grows).",
        "",
        "`vs executemany` > 1 means faster than the hand-written executemany loop; `vs bare "
        "bulk` is the target's speed as a fraction of the bare DuckDB bulk load (wall time; "
        "`CPU s`: user + system seconds of the contender, every thread, less sensitive to the "
        "load of a shared machine). Validation is "
        "compiled once per schema (hrsync.validation, fastjsonschema; singer-sdk's `jsonschema` "
        "validator re-judges a refused record, so decisions and messages are its own; where "
        "field names and value types decide, a known shape is accepted without running it) "
        "and records of an unmapped stream reach the sink in chunks (hrsync.direct). Without "
        "validation "
        "the TRY_CAST check still dead-letters any value that does not fit its column.",
        "",
        f"Medians of {args.rounds} rounds (each round runs every contender in turn; "
        "executemany and parse-only once).",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_target_warehouse.py --records {n} "
        f"--executemany-records {args.executemany_records} --rounds {args.rounds}"
        + (" --before DIR`" if args.before else "`"),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
