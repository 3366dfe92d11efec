"""Malformed Singer messages into map-hr (every mapping of meltano.yml) and every target of
meltano.yml, each run as a subprocess with a timeout.

Stream-level garbage (bad JSON, a message without ``type``, RECORD before SCHEMA, a line that
is not an object) must end the run with a non-zero exit and an error that names the problem.
Record-level garbage (wrong types, huge strings, NUL bytes, odd unicode, deep nesting, a missing
key) must be delivered, dead-lettered, or fail naming the stream / field / record. Never a hang,
never a bare ``KeyError``-style crash, never non-JSON on stdout, and never a STATE emitted past a
record that was neither delivered nor dead-lettered.

Cases come from hypothesis (``max_examples`` per plugin kept small: the whole fuzz suite stays
around a minute); the count per plugin is printed and kept in benchmarks/results/fuzz.md.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fuzz_kit import (
    BARE_CRASH,
    Outcome,
    about_schema,
    draw,
    dummy_config,
    executable,
    meltano_plugins,
    record_counts,
    run,
    run_all,
    valid_json_lines,
)
from hypothesis import strategies as st

from hrsync.deadletter import DeadLetterStore
from sandbox.directories import ADMIN, DISABLED, PASSWORD, PEOPLE, start_scim_server, start_slapd
from sandbox.server import Sandbox

STREAM_EXAMPLES = 3
RECORD_EXAMPLES = 3
MAPPING_EXAMPLES = 1  # per kind of case and map-hr mapping (all share one executable)
STATE_MARK = "fuzz-state-after-the-bad-record"
HOPE = {  # what the error must mention, per stream-level kind
    "bad_json": r"json|parse|decod|malformed|invalid",
    "missing_type": r"type",
    "record_before_schema": r"schema",
    "not_object": r"object|type|json|parse|invalid|message",
}
COUNTS: dict[str, int] = {}

IAM_SCHEMA = {
    "type": "object",
    "properties": {
        name: {"type": ["string", "null"]}
        for name in (
            "employee_id",
            "user_name",
            "work_email",
            "given_name",
            "family_name",
            "display_name",
            "title",
            "department",
            "location",
            "employment_status",
            "hire_date",
            "termination_date",
        )
    },
    "required": ["employee_id"],
}
IAM_RECORD = {
    "employee_id": "9001",
    "user_name": "fuzz.person@acme.example",
    "work_email": "fuzz.person@acme.example",
    "given_name": "Fuzz",
    "family_name": "Person",
    "display_name": "Fuzz Person",
    "title": "Engineer",
    "department": "Engineering",
    "location": "Austin",
    "employment_status": "Active",
    "hire_date": "2024-01-02",
    "termination_date": None,
}
HIRE_SCHEMA = {
    "type": "object",
    "properties": {
        "ats_candidate_id": {"type": "string"},
        "firstName": {"type": "string"},
        "lastName": {"type": "string"},
        "hireDate": {"type": "string", "format": "date"},
        "jobTitle": {"type": ["string", "null"]},
        "department": {"type": ["string", "null"]},
    },
    "required": ["ats_candidate_id"],
}
HIRE_RECORD = {
    "ats_candidate_id": "4000099999",
    "firstName": "Fuzz",
    "lastName": "Hire",
    "hireDate": "2027-01-04",
    "jobTitle": "Engineer",
    "department": "Engineering",
}


# --- the plugins and what each needs ---------------------------------------------------------


@pytest.fixture(scope="module")
def destinations(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Real destinations for the targets that have one here (others get dummy settings)."""
    work = tmp_path_factory.mktemp("fuzz-dest")
    scim, slapd = start_scim_server(), start_slapd(work / "slapd")
    try:
        with Sandbox(employees=5, vendors=("bamboohr",)) as sb:
            bh = sb.info()["bamboohr"]
            retries = {"max_retries": 2, "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05}
            yield {
                "target-bamboohr": (
                    {
                        "api_url": bh["api_url"],
                        "api_key": bh["api_key"],
                        "company_domain": bh["company_domain"],
                    }
                    | retries,
                    "bamboohr_new_hires",
                    HIRE_SCHEMA,
                    ["ats_candidate_id"],
                    HIRE_RECORD,
                ),
                "target-scim": (
                    {"base_url": scim.url("fuzz"), "bearer_token": scim.token, "use_bulk": False}
                    | retries,
                    "iam_users",
                    IAM_SCHEMA,
                    ["employee_id"],
                    IAM_RECORD,
                ),
                "target-ldap": (
                    {
                        "url": slapd.url,
                        "bind_dn": ADMIN,
                        "bind_password": PASSWORD,
                        "base_dn": PEOPLE,
                        "mode": "openldap",
                        "disabled_ou": DISABLED,
                        "dn_template": f"uid={{uid}},{PEOPLE}",
                    },
                    "iam_users",
                    IAM_SCHEMA,
                    ["employee_id"],
                    IAM_RECORD,
                ),
            }
    finally:
        scim.stop()
        slapd.stop()


def mapper_setups() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for plugin in meltano_plugins("mappers"):
        for mapping in plugin.get("mappings") or []:
            out.append((mapping["name"], {"name": plugin["name"], **mapping.get("config", {})}))
    return out


def profile_stream(profile: str) -> tuple[str, list[str]]:
    import yaml

    path = Path(__file__).resolve().parents[2] / "mappers" / "map-hr" / "map_hr" / "profiles"
    doc = yaml.safe_load((path / f"{profile}.yml").read_text(encoding="utf-8"))
    stream, spec = next(iter(doc["streams"].items()))
    return stream, list(spec.get("key_properties") or ["id"])


# --- the cases ------------------------------------------------------------------------------


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def line(message: Any) -> str:
    return json.dumps(message, ensure_ascii=False)


def stream_cases(stream: str, schema: dict[str, Any], keys: list[str]) -> st.SearchStrategy[Any]:
    schema_line = line(
        {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": keys}
    )
    record = {"type": "RECORD", "stream": stream, "record": {keys[0]: "1"}}
    garbage = st.text(min_size=1, max_size=40).filter(
        lambda s: "\n" not in s and "\r" not in s and s.strip() != "" and not _is_json(s)
    )
    truncated = st.integers(1, len(schema_line) - 1).map(lambda i: schema_line[:i])
    return st.one_of(
        st.tuples(st.just("bad_json"), st.one_of(garbage, truncated).map(lambda s: [s])),
        st.tuples(
            st.just("missing_type"),
            st.fixed_dictionaries(
                {"stream": st.just(stream), "record": st.just(record["record"])}
            ).map(lambda m: [line(m), schema_line]),
        ),
        st.tuples(st.just("record_before_schema"), st.just([line(record)])),
        st.tuples(
            st.just("not_object"),
            st.one_of(st.integers(), st.lists(st.integers(), max_size=3), st.text(max_size=8)).map(
                lambda v: [json.dumps(v)]
            ),
        ),
    )


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def record_cases(
    stream: str, schema: dict[str, Any], keys: list[str], good: dict[str, Any]
) -> st.SearchStrategy[Any]:
    fields = sorted(k for k in good if k not in keys)
    schema_line = line(
        {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": keys}
    )
    state = line({"type": "STATE", "value": {"bookmarks": {stream: STATE_MARK}}})

    def build(kind: str, name: str, value: Any) -> tuple[str, list[str], str]:
        rec = dict(good)
        if kind == "missing_key":
            rec.pop(keys[0], None)
        elif kind != "deep_nesting":
            rec[name] = value
        body = line({"type": "RECORD", "stream": stream, "record": rec})
        if kind == "deep_nesting":  # a raw nested value (deeper than any JSON parser recurses)
            body = body[:-2] + f', "{name}": {_nested(value)}' + "}}"
        return kind, [schema_line, body, state], name

    name = st.sampled_from(fields)
    return st.one_of(
        st.tuples(
            st.just("wrong_type"),
            name,
            st.sampled_from([123, 1.5, True, [1, 2], {"a": 1}, "not-a-date"]),
        ),
        st.tuples(
            st.just("huge_string"),
            name,
            st.sampled_from([100_000, 1_000_000]).map(lambda n: "Ñ" * n),
        ),
        st.tuples(
            st.just("nul_bytes"),
            name,
            st.text(min_size=0, max_size=10).map(lambda s: f"a\x00{s}\x00"),
        ),
        st.tuples(
            st.just("unicode"),
            name,
            st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30),
        ),
        st.tuples(st.just("deep_nesting"), name, st.sampled_from([64, 5_000, 200_000])),
        st.tuples(st.just("missing_key"), name, st.none()),
    ).map(lambda t: build(*t))


# --- judging --------------------------------------------------------------------------------


def judge_stream(kind: str, out: Outcome) -> str | None:
    """The problem with this outcome (None: as it should be)."""
    if out.code is None:
        return "hung"
    if out.code == 0:
        return "accepted garbage"
    if BARE_CRASH.match(out.last_line):
        return "bare crash"
    if not re.search(HOPE[kind], out.stderr, re.IGNORECASE):
        return "no specific error"
    if not valid_json_lines(out.stdout):
        return "non-JSON on stdout"
    return None


def judge_record(
    out: Outcome,
    stream: str,
    field: str,
    key: str,
    letters: int,
    target: bool,
    readable: bool = True,
) -> str | None:
    if out.code is None:
        return "hung"
    if not valid_json_lines(out.stdout):
        return "non-JSON on stdout"
    if BARE_CRASH.match(out.last_line):
        return "bare crash"
    if target and readable and out.code != 0:
        # one bad record never stops anyone else's: a target delivers it or dead-letters it
        # (a line no JSON parser can read is no record: stopping there, named, is right)
        return f"record-level garbage stopped the run (exit {out.code})"
    if out.code != 0:
        names = "|".join(re.escape(x) for x in (stream, field, key, "record", "json", "nest"))
        if not re.search(names, out.stderr, re.IGNORECASE):
            return "failure names neither stream, field nor record"
        if target and not letters and STATE_MARK in out.stdout:
            return "STATE emitted past an undelivered record"
    return None


#: (plugin, case kind) -> what is wrong: bugs in plugins this suite found (reported to their
#: owners). A case of these kinds that goes wrong makes the test xfail with the reason; any
#: other problem fails it; once fixed, the test simply passes.
KNOWN: dict[tuple[str, str], str] = {}  # none today (map-hr and target bugs fixed)


def verdict(plugin: str, problems: list[tuple[str, str, Outcome]]) -> None:
    """Fail on unexpected problems; xfail when only known, reported bugs remain."""

    def known_as(kind: str) -> str | None:
        return KNOWN.get((plugin, kind)) or (KNOWN.get(("*", kind)) if plugin != "map-hr" else None)

    unknown = [p for p in problems if known_as(p[0]) is None]
    assert not unknown, "\n\n".join(f"[{k}] {why}: {out.describe()}" for k, why, out in unknown)
    known = sorted({f"{plugin}: {known_as(k)}" for k, _, _ in problems})
    if known:
        pytest.xfail("; ".join(known))


# --- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "mapping"), mapper_setups(), ids=[m[0] for m in mapper_setups()])
def test_map_hr_mappings_reject_malformed_messages(
    name: str, mapping: dict[str, Any], tmp_path: Path
) -> None:
    exe = executable({"name": mapping["name"]})
    if exe is None:
        pytest.skip(f"{mapping['name']} is not installed in this venv")
    stream, keys = profile_stream(mapping["profile"])
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "profile": mapping["profile"],
                "hmac_key": "fuzz-hmac-key-0123456789abcdef",
                "state_dir": str(tmp_path / "state"),
            }
        )
    )
    argv = [str(exe), "--config", str(config)]
    env = {**os.environ, "HRSYNC_DLQ_PATH": str(tmp_path / "dlq.sqlite")}
    schema = {
        "type": "object",
        "properties": {
            keys[0]: {"type": ["string", "integer"]},
            "name": {"type": ["string", "null"]},
            "status": {"type": ["string", "null"]},
        },
    }
    good = {keys[0]: "1", "name": "Zoë O'Brien", "status": "Accepted"}
    s_cases = draw(stream_cases(stream, schema, keys), MAPPING_EXAMPLES)
    r_cases = draw(record_cases(stream, schema, keys, good), MAPPING_EXAMPLES)
    jobs: list[Callable[[], Outcome]] = [
        (lambda k=k, ls=ls: run(argv, "\n".join(ls).encode() + b"\n", env, k)) for k, ls in s_cases
    ] + [
        (lambda k=k, ls=ls: run(argv, "\n".join(ls).encode() + b"\n", env, k))
        for k, ls, _ in r_cases
    ]
    outcomes = run_all(jobs)
    problems = []
    for (kind, _), out in zip(s_cases, outcomes, strict=False):
        if why := judge_stream(kind, out):
            problems.append((kind, why, out))
    for (kind, _, field), out in zip(r_cases, outcomes[len(s_cases) :], strict=True):
        if why := judge_record(out, stream, field, "1", 0, target=False):
            problems.append((kind, why, out))
    COUNTS[name] = len(s_cases) + len(r_cases)
    record_counts("Singer messages into map-hr and the targets", COUNTS)
    verdict("map-hr", problems)


@pytest.mark.parametrize("plugin", [p["name"] for p in meltano_plugins("loaders")])
def test_targets_reject_malformed_messages(
    plugin: str, destinations: dict[str, Any], tmp_path: Path
) -> None:
    spec = next(p for p in meltano_plugins("loaders") if p["name"] == plugin)
    exe = executable(spec)
    if exe is None:
        pytest.skip(f"{plugin} is not installed in this venv (Meltano installs it separately)")
    env = {
        **os.environ,
        "HRSYNC_DLQ_PATH": str(tmp_path / "dlq.sqlite"),
        "HRSYNC_INTEGRATION": "fuzz",
        "HRSYNC_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
    }
    if plugin in destinations:
        settings, stream, schema, keys, good = destinations[plugin]
        config = settings
    else:  # no destination here: only the stream-level garbage, which no sink ever sees
        config = dummy_config(about_schema(exe), "http://127.0.0.1:9", tmp_path)
        stream, schema, keys, good = "fuzz_stream", IAM_SCHEMA, ["employee_id"], IAM_RECORD
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    argv = [str(exe), "--config", str(path)]
    s_cases = draw(stream_cases(stream, schema, keys), STREAM_EXAMPLES)
    r_cases = (
        draw(record_cases(stream, schema, keys, good), RECORD_EXAMPLES)
        if plugin in destinations
        else []
    )

    def one(lines: list[str], kind: str, n: int) -> Callable[[], Outcome]:
        def go() -> Outcome:
            case_env = env | {"HRSYNC_DLQ_PATH": str(tmp_path / f"dlq-{n}.sqlite")}
            return run(argv, "\n".join(lines).encode() + b"\n", case_env, kind)

        return go

    outcomes = run_all(
        [one(ls, k, i) for i, (k, ls) in enumerate(s_cases)]
        + [one(ls, k, 100 + i) for i, (k, ls, _) in enumerate(r_cases)]
    )
    problems = []
    for (kind, _), out in zip(s_cases, outcomes, strict=False):
        if why := judge_stream(kind, out):
            problems.append((kind, why, out))
    dead = 0
    cases = zip(r_cases, outcomes[len(s_cases) :], strict=True)
    for i, ((kind, _lines, field), out) in enumerate(cases):
        letters = len(DeadLetterStore(tmp_path / f"dlq-{100 + i}.sqlite").list(status=None))
        dead += letters
        # nesting deeper than JSON parsers recurse (5,000 and 200,000 levels) cannot be read
        readable = not (kind == "deep_nesting" and any("[" * 1000 in x for x in _lines))
        if why := judge_record(
            out, stream, field, str(good[keys[0]]), letters, target=True, readable=readable
        ):
            problems.append((kind, why, out))
    COUNTS[plugin] = len(s_cases) + len(r_cases)
    record_counts("Singer messages into map-hr and the targets", COUNTS)
    print(f"{plugin}: {len(r_cases)} record-level cases, {dead} dead letter(s)")
    verdict(plugin, problems)
