"""target-warehouse into a real DuckDB file: every row read back and checked."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from hrsync.deadletter import DeadLetterStore
from hrsync.errors import RecordError
from target_warehouse.target import TargetWarehouse

BIN = Path(sys.executable).parent

PEOPLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "headcount": {"type": ["integer", "null"]},
        "score": {"type": ["number", "null"]},
        "active": {"type": ["boolean", "null"]},
        "hired": {"type": ["string", "null"], "format": "date"},
        "changed_at": {"type": ["string", "null"], "format": "date-time"},
        "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        "extra": {"type": ["object", "null"]},
        "note": {"type": ["string", "null"]},
    },
}


def schema_msg(stream: str, schema: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    return {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": keys}


def rec(stream: str, record: dict[str, Any]) -> dict[str, Any]:
    return {"type": "RECORD", "stream": stream, "record": record}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    dlq = tmp_path / "dlq.sqlite"
    monkeypatch.setenv("HRSYNC_DLQ_PATH", str(dlq))
    monkeypatch.setenv("HRSYNC_INTEGRATION", "warehouse-test")
    return {"database": str(tmp_path / "w.duckdb"), "dlq": dlq}


def run(env: dict[str, Any], messages: list[dict[str, Any]], **config: Any) -> None:
    text = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in messages)
    TargetWarehouse(config={"database": env["database"], **config}).listen(io.StringIO(text))


def rows(env: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(env["database"], read_only=True) as con:
        return con.execute(sql).fetchall()


def columns(env: dict[str, Any], table: str) -> dict[str, str]:
    with duckdb.connect(env["database"], read_only=True) as con:
        return {
            str(n): str(t)
            for n, t in con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? ORDER BY ordinal_position",
                [table],
            ).fetchall()
        }


def test_types_follow_the_schema_and_every_value_lands(env: dict[str, Any]) -> None:
    before = datetime.now(UTC)
    run(
        env,
        [
            schema_msg("people", PEOPLE_SCHEMA, ["id"]),
            rec(
                "people",
                {
                    "id": "1",
                    "headcount": 12,
                    "score": 4.25,
                    "active": True,
                    "hired": "2019-03-04",
                    "changed_at": "2025-01-02T03:04:05+02:00",
                    "tags": ["a", "b"],
                    "extra": {"k": [1, 2]},
                    "note": 'line one\nline "two"',
                },
            ),
            rec("people", {"id": "2"}),
        ],
    )
    assert columns(env, "people") == {
        "id": "VARCHAR",
        "headcount": "BIGINT",
        "score": "DOUBLE",
        "active": "BOOLEAN",
        "hired": "DATE",
        "changed_at": "TIMESTAMP WITH TIME ZONE",
        "tags": "JSON",
        "extra": "JSON",
        "note": "VARCHAR",
        "_loaded_at": "TIMESTAMP WITH TIME ZONE",
    }
    got = rows(env, "SELECT * EXCLUDE (_loaded_at) FROM people ORDER BY id")
    assert got[0][:5] == ("1", 12, 4.25, True, date(2019, 3, 4))
    assert got[0][5] == datetime(2025, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert json.loads(got[0][6]) == ["a", "b"]
    assert json.loads(got[0][7]) == {"k": [1, 2]}
    assert got[0][8] == 'line one\nline "two"'
    assert got[1] == ("2", None, None, None, None, None, None, None, None)
    (loaded,) = rows(env, "SELECT DISTINCT _loaded_at FROM people")
    assert before <= loaded[0] <= datetime.now(UTC)


def test_upserts_on_the_key_within_a_batch_and_across_runs(env: dict[str, Any]) -> None:
    first = [
        schema_msg("people", PEOPLE_SCHEMA, ["id"]),
        rec("people", {"id": "1", "headcount": 1}),
        rec("people", {"id": "2", "headcount": 2}),
        rec("people", {"id": "1", "headcount": 3}),  # same batch: the last one wins
    ]
    run(env, first)
    assert rows(env, "SELECT id, headcount FROM people ORDER BY id") == [("1", 3), ("2", 2)]
    run(
        env,
        [
            schema_msg("people", PEOPLE_SCHEMA, ["id"]),
            rec("people", {"id": "2", "headcount": 20}),
            rec("people", {"id": "3", "headcount": 30}),
        ],
    )
    assert rows(env, "SELECT id, headcount FROM people ORDER BY id") == [
        ("1", 3),
        ("2", 20),
        ("3", 30),
    ]
    # a re-run of the same input converges to the same table
    run(env, first)
    assert rows(env, "SELECT count(*), count(DISTINCT id) FROM people") == [(3, 3)]


def test_composite_keys_small_batches_and_keyless_streams(env: dict[str, Any]) -> None:
    schema = {
        "type": "object",
        "properties": {
            "response_id": {"type": "string"},
            "question_id": {"type": "string"},
            "value": {"type": ["integer", "null"]},
        },
    }
    messages = [schema_msg("answers", schema, ["response_id", "question_id"])]
    messages += [
        rec("answers", {"response_id": f"r{i % 7}", "question_id": f"q{i % 3}", "value": i})
        for i in range(50)
    ]
    messages += [schema_msg("events", schema, [])]
    messages += [rec("events", {"response_id": "r", "question_id": "q", "value": 1})] * 4
    run(env, messages, batch_size_rows=4)
    expected = {}
    for i in range(50):
        expected[(f"r{i % 7}", f"q{i % 3}")] = i
    got = rows(env, "SELECT response_id, question_id, value FROM answers")
    assert {(r, q): v for r, q, v in got} == expected
    assert len(got) == len(expected) == 21
    assert rows(env, "SELECT count(*) FROM events") == [(4,)]  # no key: appended


ANSWERS = {
    "type": "object",
    "properties": {
        "response_id": {"type": "string"},
        "question_id": {"type": "string"},
        "answer_position": {"type": "integer"},
        "choice_id": {"type": ["string", "null"]},
    },
}
ANSWER_KEYS = ["response_id", "question_id", "answer_position"]


def answer(response: str, question: str, position: int, choice: str) -> dict[str, Any]:
    return rec(
        "survey_answers",
        {"response_id": response, "question_id": question, "answer_position": position,
         "choice_id": choice},
    )  # fmt: skip


def test_an_edited_response_replaces_its_answers_as_a_whole(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A respondent unticks one of two boxes and skips a question: the answers that are gone
    leave the warehouse too, even when the edited response spans two batches; other responses
    stay untouched, and a dead-letter replay of one answer does not wipe its siblings."""
    parent = {"replace_by_parent": {"survey_answers": ["response_id"]}}
    run(
        env,
        [
            schema_msg("survey_answers", ANSWERS, ANSWER_KEYS),
            answer("r1", "q1", 0, "c1"),
            answer("r1", "q1", 1, "c2"),
            answer("r1", "q2", 0, "c5"),
            answer("r2", "q1", 0, "c1"),
        ],
        **parent,
    )
    # the edit: q1 keeps only its first box (now c3), q2 is unanswered, q3 is new
    run(
        env,
        [
            schema_msg("survey_answers", ANSWERS, ANSWER_KEYS),
            answer("r1", "q1", 0, "c3"),
            answer("r1", "q3", 0, "c9"),
            answer("r1", "q3", 1, "c8"),
        ],
        batch_size_rows=2,  # r1's answers arrive in two batches
        **parent,
    )
    got = rows(env, "SELECT response_id, question_id, answer_position, choice_id FROM "
                    "survey_answers ORDER BY ALL")  # fmt: skip
    assert got == [
        ("r1", "q1", 0, "c3"),
        ("r1", "q3", 0, "c9"),
        ("r1", "q3", 1, "c8"),
        ("r2", "q1", 0, "c1"),
    ]
    monkeypatch.setenv("HRSYNC_REPLAY", "1")
    run(env, [schema_msg("survey_answers", ANSWERS, ANSWER_KEYS), answer("r1", "q4", 0, "c1")],
        **parent)  # fmt: skip
    assert rows(env, "SELECT count(*) FROM survey_answers WHERE response_id = 'r1'") == [(4,)]


def test_replace_by_parent_must_name_declared_columns(env: dict[str, Any]) -> None:
    with pytest.raises(RecordError, match="replace_by_parent names a column"):
        run(
            env,
            [schema_msg("survey_answers", ANSWERS, ANSWER_KEYS)],
            replace_by_parent={"survey_answers": ["respondent"]},
        )


def test_many_streams_interleaved_share_one_database(env: dict[str, Any]) -> None:
    """Sinks drain one at a time (one DuckDB connection): no 'connection is busy' errors."""
    schema = {"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}}
    streams = [f"s{i}" for i in range(6)]
    messages = [schema_msg(s, schema, ["id"]) for s in streams]
    messages += [rec(s, {"id": str(i), "n": i}) for i in range(30) for s in streams]
    run(env, messages, batch_size_rows=7)
    for s in streams:
        assert rows(env, f"SELECT count(*), sum(n) FROM {s}") == [(30, sum(range(30)))]  # noqa: S608


def test_schema_evolution_adds_and_widens_columns(env: dict[str, Any]) -> None:
    v1 = {"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}}
    run(env, [schema_msg("s", v1, ["id"]), rec("s", {"id": "a", "n": 1})])
    v2 = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "n": {"type": "number"},  # integer -> number: the column widens
            "city": {"type": ["string", "null"]},  # new
        },
    }
    run(env, [schema_msg("s", v2, ["id"]), rec("s", {"id": "b", "n": 2.5, "city": "Kraków"})])
    assert columns(env, "s") == {
        "id": "VARCHAR",
        "n": "DOUBLE",
        "_loaded_at": "TIMESTAMP WITH TIME ZONE",
        "city": "VARCHAR",
    }
    assert rows(env, "SELECT id, n, city FROM s ORDER BY id") == [
        ("a", 1.0, None),
        ("b", 2.5, "Kraków"),
    ]
    # a property that disappears keeps its column; a retyped one becomes text, rows kept
    v3 = {"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "boolean"}}}
    run(env, [schema_msg("s", v3, ["id"]), rec("s", {"id": "c", "n": True})])
    assert columns(env, "s")["n"] == "VARCHAR"
    assert rows(env, "SELECT id, n, city FROM s ORDER BY id") == [
        ("a", "1.0", None),
        ("b", "2.5", "Kraków"),
        ("c", "true", None),
    ]


def test_schema_change_mid_stream(env: dict[str, Any]) -> None:
    v1 = {"type": "object", "properties": {"id": {"type": "string"}}}
    v2 = {"type": "object", "properties": {"id": {"type": "string"}, "x": {"type": "integer"}}}
    run(
        env,
        [
            schema_msg("s", v1, ["id"]),
            rec("s", {"id": "a"}),
            schema_msg("s", v2, ["id"]),
            rec("s", {"id": "b", "x": 7}),
        ],
    )
    assert rows(env, "SELECT id, x FROM s ORDER BY id") == [("a", None), ("b", 7)]


def test_unicode_table_and_column_names(env: dict[str, Any]) -> None:
    schema = {
        "type": "object",
        "properties": {
            "clé": {"type": "string"},
            "prénom": {"type": ["string", "null"]},
            "名前": {"type": ["string", "null"]},
            'odd "quoted" name': {"type": ["integer", "null"]},
        },
    }
    run(
        env,
        [
            schema_msg("équipe-Ω", schema, ["clé"]),
            rec(
                "équipe-Ω",
                {"clé": "1", "prénom": "Zoë O'Brien", "名前": "王 🙂", 'odd "quoted" name': 5},
            ),
        ],
    )
    assert rows(env, 'SELECT "clé", "prénom", "名前", "odd ""quoted"" name" FROM "équipe-Ω"') == [
        ("1", "Zoë O'Brien", "王 🙂", 5)
    ]


def test_bad_records_go_to_the_dead_letter_store_and_the_rest_loads(env: dict[str, Any]) -> None:
    run(
        env,
        [
            schema_msg("people", PEOPLE_SCHEMA, ["id"]),
            rec("people", {"id": "1", "headcount": 1}),
            rec("people", {"id": "2", "headcount": "twelve"}),  # wrong type
            rec("people", {"id": "3", "hired": "2019-02-30"}),  # not a date
            rec("people", {"headcount": 4}),  # no key
            rec("people", {"id": "5", "headcount": 10**30}),  # beyond BIGINT
            rec("people", {"id": "6", "headcount": 6}),
        ],
    )
    assert rows(env, "SELECT id, headcount FROM people ORDER BY id") == [("1", 1), ("6", 6)]
    letters = {
        letter.record_key: letter
        for letter in DeadLetterStore(env["dlq"]).list(plugin="target-warehouse")
    }
    nokey = next(k for k in letters if k.startswith("<missing:"))
    assert set(letters) == {"2", "3", nokey, "5"}
    assert letters["2"].error == (
        "stream people, record 2: field headcount: expected ['integer', 'null'], got string"
    )
    assert "field hired: not a valid date" in letters["3"].error
    assert "field id: key property is missing or null" in letters[nokey].error
    assert "field headcount: value does not convert to the column type BIGINT" in letters["5"].error
    # errors name the field and the reason, never the value
    assert not any(
        "twelve" in letter.error or "2019-02-30" in letter.error for letter in letters.values()
    )
    assert letters["2"].record == {"id": "2", "headcount": "twelve"}
    assert letters["5"].record is not None and letters["5"].record["headcount"] == 10**30
    assert letters["2"].integration == "warehouse-test"
    assert {x.error_class for x in letters.values()} == {
        "invalid_record", "invalid_date", "missing_key", "type_conversion"
    }  # fmt: skip
    assert letters["2"].schema is not None and letters["2"].key_properties == ["id"]
    # the fixed record arrives later: loaded, and its letter is resolved
    run(
        env,
        [schema_msg("people", PEOPLE_SCHEMA, ["id"]), rec("people", {"id": "2", "headcount": 12})],
    )
    assert rows(env, "SELECT headcount FROM people WHERE id = '2'") == [(12,)]
    waiting = {x.record_key for x in DeadLetterStore(env["dlq"]).list(plugin="target-warehouse")}
    assert waiting == {"3", nokey, "5"}


def test_a_letter_is_resolved_only_by_a_later_good_record(env: dict[str, Any]) -> None:
    run(
        env,
        [
            schema_msg("people", PEOPLE_SCHEMA, ["id"]),
            rec("people", {"id": "1", "headcount": 1}),
            rec("people", {"id": "1", "headcount": "x"}),  # the newer version fails: it waits
            rec("people", {"id": "2", "headcount": "x"}),
            rec("people", {"id": "2", "headcount": 2}),  # fixed in the same batch: resolved
        ],
    )
    waiting = {x.record_key for x in DeadLetterStore(env["dlq"]).list(plugin="target-warehouse")}
    assert waiting == {"1"}
    assert rows(env, "SELECT id, headcount FROM people ORDER BY id") == [("1", 1), ("2", 2)]


def test_untyped_and_nested_values_keep_their_json(env: dict[str, Any]) -> None:
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "anything": {},  # no type: stored as JSON, whatever the value
            "choices": {"type": ["array", "null"], "items": {"type": "object"}},
        },
    }
    values = ["plain text", 5, {"a": "é"}, [1, "two"], True]
    run(
        env,
        [schema_msg("j", schema, ["id"])]
        + [rec("j", {"id": str(i), "anything": v}) for i, v in enumerate(values)]
        + [rec("j", {"id": "c", "choices": [{"id": "1", "position": 1, "text": "Agree"}]})],
    )
    got = dict(rows(env, "SELECT id, anything FROM j WHERE id <> 'c'"))
    assert [json.loads(got[str(i)]) for i in range(len(values))] == values
    (choices,) = rows(env, "SELECT choices FROM j WHERE id = 'c'")[0]
    assert json.loads(choices) == [{"id": "1", "position": 1, "text": "Agree"}]
    assert rows(env, "SELECT json_array_length(choices) FROM j WHERE id = 'c'") == [(1,)]


def test_columns_that_differ_only_in_case_are_refused(env: dict[str, Any]) -> None:
    schema = {"type": "object", "properties": {"id": {"type": "string"}, "ID": {"type": "string"}}}
    with pytest.raises(Exception, match="ignore case"):
        run(env, [schema_msg("s", schema, ["id"]), rec("s", {"id": "1", "ID": "2"})])


def test_console_script_loads_and_passes_state_on(env: dict[str, Any], tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"database": env["database"], "schema": "analytics"}))
    lines = [
        schema_msg("people", PEOPLE_SCHEMA, ["id"]),
        rec("people", {"id": "1", "note": "é"}),
        {"type": "STATE", "value": {"bookmarks": {"people": "x"}}},
    ]
    proc = subprocess.run(
        [str(BIN / "target-warehouse"), "--config", str(config)],
        input="".join(json.dumps(m) + "\n" for m in lines),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"bookmarks": {"people": "x"}}
    assert rows(env, "SELECT id, note FROM analytics.people") == [("1", "é")]


@pytest.mark.parametrize(
    ("bad", "field"),
    [({"note": "\ud800"}, "note"), ({"extra": {"aka": ["x", "\udfff"]}}, "extra.aka[1]")],
    ids=["top-level", "nested"],
)
def test_a_lone_surrogate_is_that_records_dead_letter(
    env: dict[str, Any], bad: dict[str, Any], field: str
) -> None:
    broken = {"id": "2", "headcount": 2, **bad}
    run(
        env,
        [
            schema_msg("people", PEOPLE_SCHEMA, ["id"]),
            rec("people", {"id": "1", "headcount": 1}),
            rec("people", broken),  # before: UnicodeEncodeError, and no row at all
            rec("people", {"id": "3", "headcount": 3}),
        ],
    )
    assert rows(env, "SELECT id, headcount FROM people ORDER BY id") == [("1", 1), ("3", 3)]
    (letter,) = DeadLetterStore(env["dlq"]).list(plugin="target-warehouse")
    assert (letter.stream, letter.record_key) == ("people", "2")
    assert f"stream people, record 2: field {field}: unpaired UTF-16 surrogate" in letter.error
    assert letter.record == broken and letter.error_class == "unpaired_surrogate"
    assert letter.key_properties == ["id"]


def test_input_that_is_not_utf8_is_that_records_dead_letter(env: dict[str, Any]) -> None:
    """The console script on real stdin: a JSON surrogate escape and a byte that is not UTF-8
    are each their record's dead letter; the records around them load."""
    lines = [
        json.dumps(schema_msg("people", PEOPLE_SCHEMA, ["id"])).encode(),
        json.dumps(rec("people", {"id": "1"})).encode(),
        b'{"type": "RECORD", "stream": "people", "record": {"id": "2", "note": "\\ud800"}}',
        b'{"type": "RECORD", "stream": "people", "record": {"id": "3", "note": "caf\xe9"}}',
        json.dumps(rec("people", {"id": "4"})).encode(),
    ]
    config = Path(env["database"]).with_suffix(".json")
    config.write_text(json.dumps({"database": env["database"]}))
    done = subprocess.run(
        [str(BIN / "target-warehouse"), "--config", str(config)],
        input=b"\n".join(lines) + b"\n",
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert rows(env, "SELECT id FROM people ORDER BY id") == [("1",), ("4",)]
    letters = {x.record_key: x for x in DeadLetterStore(env["dlq"]).list()}
    assert set(letters) == {"2", "3"}
    assert "record 2: field note: unpaired UTF-16 surrogate '\\ud800'" in letters["2"].error
    assert "record 3: field note: unpaired UTF-16 surrogate '\\udce9' at character 3 (or byte " \
        "0xe9 of input that is not UTF-8)" in letters["3"].error  # fmt: skip
    assert letters["3"].record == {"id": "3", "note": "caf\udce9"}  # kept byte for byte
