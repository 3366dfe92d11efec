"""The map-hr engine: compiled profile plans applied to a stream of Singer messages.

This module does not import singer-sdk, so the command line can start in a fraction of the
time the SDK takes to import (see ``map_hr.cli``); ``map_hr.mapper.MapHR`` wraps the same engine
as a singer-sdk ``InlineMapper``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import orjson

from hrsync.errors import ConfigError, RecordError
from hrsync.pseudonym import DEFAULT_ENV, Pseudonymizer, PseudonymKeyError
from hrsync.sealing import derive_keys
from hrsync.shapes import json_kind, unencodable

from .lookups import LookupStore, recent_salts
from .plan import (
    FieldFailure,
    StreamPlan,
    compile_profile,
    population_predicate,
    runtime_pii_violations,
)
from .profile import Profile, parse_profile, resolve_profile_path

READ_BUFFER = 1 << 20
#: hrsync.deadletter's ENV_PATH and DEFAULT_PATH, without importing the store (~0.2 s) on a
#: run that has no bad record
DLQ_ENV, DLQ_DEFAULT = "HRSYNC_DLQ_PATH", ".hrsync/deadletters.sqlite"
#: the lookup-store name under which a population's members are remembered
POPULATION = "\x00population"
WRITE_BUFFER = 1 << 20

logger = logging.getLogger("map_hr")

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "profile": {
            "type": "string",
            "description": "Profile name (in profiles_dir) or path to a .yml/.json profile.",
        },
        "profiles_dir": {
            "type": "string",
            "description": "Directory of profiles (default: the profiles shipped with map-hr).",
        },
        "hmac_key": {
            "type": "string",
            "secret": True,
            "writeOnly": True,
            "description": f"HMAC-SHA256 pseudonym key (>= 16 bytes); default ${DEFAULT_ENV}.",
        },
        "system_of_record": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Output field (or stream.field) -> owning system (over the profile's).",
        },
        "state_dir": {
            "type": "string",
            "description": "Directory for the lookup store (default .hrsync/map-hr).",
        },
        "lookup_retention_days": {
            "type": "number",
            "minimum": 0,
            "description": "Days a lookup record (e.g. a candidate never hired) is kept after "
            "it was last seen; older ones are purged when the store opens (default 180). "
            "Records are sealed with $HRSYNC_DLQ_KEY.",
        },
        "unknown_streams": {
            "type": "string",
            "enum": ["deny", "pass"],
            "description": "Streams the profile does not name: deny (drop; default) or pass.",
        },
        "bad_records": {
            "type": "string",
            "enum": ["dead_letter", "fail"],
            "description": "A record the profile cannot map: dead_letter (default: it goes to "
            "the dead-letter store naming field and reason, every other record is delivered, "
            "exit 0) or fail (stop with exit 1).",
        },
    },
    "required": ["profile"],
}


class MapperDeadLetters:
    """map-hr's side of the dead-letter store (``hrsync.deadletter``), opened on first use so
    a run without bad records never imports it.

    Letters are filed under plugin ``map-hr:<profile>``, the output stream and the input
    record's key. They hold what the destination may receive (the fields that mapped) and no
    schema: a mapping failure is fixed in the source system, not replayed, and the letter is
    resolved by the first later run that maps the same record.
    """

    def __init__(self, profile: str) -> None:
        self.plugin = f"map-hr:{profile}"
        self._store: Any = None
        self._waiting: set[tuple[str, str]] = set()
        self._resolved: dict[str, list[str]] = {}
        #: letters of this profile waiting from earlier runs: records to watch for
        self.watching = False
        path = os.environ.get(DLQ_ENV) or DLQ_DEFAULT
        if Path(path).exists():
            for letter in self.store.list(plugin=self.plugin):
                self._waiting.add((letter.stream, letter.record_key))
            self.watching = bool(self._waiting)

    @property
    def store(self) -> Any:
        if self._store is None:
            from hrsync.deadletter import DeadLetterStore

            self._store = DeadLetterStore()
        return self._store

    def dead(self, stream: str, key: str, record: dict[str, Any], error: str, field: str) -> None:
        self.store.add(
            plugin=self.plugin,
            stream=stream,
            record_key=key,
            record=record,
            error=error,
            error_class=f"unmappable_{field}",
        )
        self._waiting.discard((stream, key))  # failed again: stays waiting

    def mapped(self, stream: str, key: str) -> None:
        if (stream, key) in self._waiting:
            self._waiting.discard((stream, key))
            self._resolved.setdefault(stream, []).append(key)

    def flush(self) -> int:
        done = 0
        for stream, keys in self._resolved.items():
            done += self.store.resolve(plugin=self.plugin, stream=stream, record_keys=keys)
        self._resolved.clear()
        return done


def _default(obj: Any) -> Any:
    """orjson fallback: Decimal (from singer-sdk's reader) and anything else with str()."""
    return str(obj)


Emit = Callable[[Any], None]  # a message dict, or raw bytes of an input line passed through


class Engine:
    """Runs a compiled profile over Singer messages; ``emit`` receives what goes out."""

    def __init__(
        self,
        profile: Profile,
        plans: list[StreamPlan],
        *,
        unknown_streams: str,
        state_dir: str | Path | None,
        lookup_retention_days: float | None = None,
        bad_records: str = "dead_letter",
    ) -> None:
        self.profile = profile
        self.bad_records = bad_records
        self.letters = MapperDeadLetters(profile.name) if bad_records == "dead_letter" else None
        self.plans: dict[str, list[StreamPlan]] = {}
        for plan in plans:
            self.plans.setdefault(plan.input_stream, []).append(plan)
        self.unknown_streams = unknown_streams
        self.lookups: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {}
        for name, lk in (profile.data.get("lookups") or {}).items():
            self.lookups.setdefault(lk["stream"], []).append((name, lk["key"], tuple(lk["keep"])))
        self.lookup_streams = {
            name: lk["stream"] for name, lk in (profile.data.get("lookups") or {}).items()
        }
        # lookups that keep every row of a key (a history table), by row id field
        self.many = {
            name: str(lk["many"])
            for name, lk in (profile.data.get("lookups") or {}).items()
            if lk.get("many")
        }
        population = profile.data.get("population")
        #: (stream, key field, predicate): who the profile is about (see ``_in_population``)
        self.population: tuple[str, str, Callable[[dict[str, Any]], bool]] | None = None
        if population is not None:
            predicate = population_predicate(profile)
            assert predicate is not None
            self.population = (population["stream"], population["key"], predicate)
        self.store: LookupStore | None = None
        if self.lookups or self.population:
            base = Path(state_dir) if state_dir else Path(".hrsync") / "map-hr"
            self.store = LookupStore(
                base / f"{profile.name}.sqlite", retention_days=lookup_retention_days
            )
        self.schemas: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, list[str]] = {}
        self.schema_sent: set[str] = set()
        self.held: list[Any] = []  # control messages held while records wait for a lookup
        self.denied: Counter[str] = Counter()
        self.passed: Counter[str] = Counter()
        self.records_in: Counter[str] = Counter()
        self.records_out: Counter[str] = Counter()
        self.filtered: Counter[str] = Counter()
        self.stored: Counter[str] = Counter()
        self.sor_dropped: Counter[tuple[str, str, str]] = Counter()
        self.dead: Counter[str] = Counter()  # output stream -> records dead-lettered
        self.outside: Counter[str] = Counter()  # output stream -> records of non-members
        self._fast_counts: list[tuple[StreamPlan, list[int]]] = []
        self.line: int | None = None  # the input line being handled (run_stream sets it)

    def _at(self) -> str:
        return f"line {self.line}: " if self.line is not None else ""

    def _on_line(self) -> str:
        return f" (input line {self.line})" if self.line is not None else ""

    def _stream(self, msg: dict[str, Any]) -> str:
        stream = msg.get("stream")
        if not isinstance(stream, str) or not stream:
            raise ConfigError(
                f'{self._at()}{msg.get("type")} message without a "stream" name '
                f"(got {json_kind(stream)}); every Singer {msg.get('type')} names its stream"
            )
        return stream

    # --- dispatch ---------------------------------------------------------------------------

    def handle(self, msg: dict[str, Any], raw: bytes | None, emit: Emit) -> None:
        kind = msg.get("type")
        if kind == "RECORD":
            self.on_record(msg, raw, emit)
        elif kind == "STATE":
            self._control(msg if raw is None else raw, emit)
        elif kind == "SCHEMA":
            self.on_schema(msg, raw, emit)
        elif kind == "ACTIVATE_VERSION":
            self.on_activate_version(msg, raw, emit)
        elif kind == "BATCH":
            stream = self._stream(msg)
            if stream in self.plans or stream in self.lookups:
                raise ConfigError(f"map-hr cannot map BATCH messages (stream {stream!r})")
            self._unknown(stream, msg, raw, emit)
        else:
            what = 'no "type" key' if kind is None else f"unknown type {kind!r}"
            raise ConfigError(
                f"{self._at()}Singer message with {what} (expected RECORD, SCHEMA, STATE, "
                "ACTIVATE_VERSION or BATCH)"
            )

    def _control(self, message: Any, emit: Emit) -> None:
        if self.held or (self.store is not None and self.store.pending_count):
            self.held.append(message)
        else:
            emit(message)

    def _unknown(self, stream: str, msg: dict[str, Any], raw: bytes | None, emit: Emit) -> None:
        if self.unknown_streams == "pass":
            if msg.get("type") == "RECORD":
                self.passed[stream] += 1
            emit(msg if raw is None else raw)
            return
        if stream not in self.denied:
            logger.warning(
                "stream %r is not in profile %s: denied (its messages are dropped; set "
                "unknown_streams: pass to let it through unchanged)",
                stream,
                self.profile.name,
            )
        self.denied[stream] += msg.get("type") == "RECORD"

    # --- SCHEMA -------------------------------------------------------------------------------

    def on_schema(self, msg: dict[str, Any], raw: bytes | None, emit: Emit) -> None:
        stream = self._stream(msg)
        schema = msg.get("schema") or {}
        if not isinstance(schema, dict):
            raise ConfigError(
                f'{self._at()}SCHEMA of stream {stream!r}: "schema" must be a JSON object, '
                f"got {json_kind(schema)}"
            )
        self.schemas[stream] = schema
        self.keys[stream] = list(msg.get("key_properties") or [])
        plans = self.plans.get(stream)
        if plans is None:
            if stream not in self.lookups:
                self._unknown(stream, msg, raw, emit)
            return
        for plan in plans:
            lookup_schemas = self._lookup_schemas(plan)
            bad = runtime_pii_violations(plan, schema, lookup_schemas)
            if bad:
                fp, path, cls = bad[0]
                raise self.profile.error(
                    fp.key_path,
                    f"field {fp.name!r} reads {path!r}, which the SCHEMA of stream {stream!r} "
                    f"marks as {cls}; add `sensitive_ok: true` to send it to "
                    f"{self.profile.destination}, or `hmac: true` to pseudonymise it",
                )
            emit(self._schema_message(plan, schema, msg))

    def _lookup_schemas(self, plan: StreamPlan) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for j in plan.joins:
            stream = self.lookup_streams.get(j.lookup)
            if stream and stream in self.schemas:
                out[j.name] = self.schemas[stream]
        return out

    def _schema_message(
        self, plan: StreamPlan, schema: Mapping[str, Any] | None, msg: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        out_schema = plan.output_schema(schema, self._lookup_schemas(plan))
        message: dict[str, Any] = {
            "type": "SCHEMA",
            "stream": plan.output_stream,
            "schema": out_schema,
            "key_properties": plan.key_properties,
        }
        if msg is not None:
            names = {f.name for f in plan.fields}
            bookmarks = [b for b in msg.get("bookmark_properties") or [] if b in names]
            if bookmarks:
                message["bookmark_properties"] = bookmarks
        self.schema_sent.add(plan.output_stream)
        return message

    # --- RECORD -------------------------------------------------------------------------------

    def on_record(self, msg: dict[str, Any], raw: bytes | None, emit: Emit) -> None:
        stream = self._stream(msg)
        refs = self.lookups.get(stream)
        plans = self.plans.get(stream)
        if plans is None and refs is None:
            self._unknown(stream, msg, raw, emit)
            return
        rec = msg.get("record")
        if not isinstance(rec, dict):
            raise RecordError(
                stream,
                "<none>",
                None,
                f'RECORD message whose "record" is {json_kind(rec)}, not a JSON object'
                f"{self._on_line()}",
            )
        if stream not in self.schemas:
            raise RecordError(
                stream,
                self.record_key(stream, rec),
                None,
                f"RECORD before any SCHEMA message of stream {stream!r}{self._on_line()}: a tap "
                "must send a stream's SCHEMA before its records (is the input cut or reordered?)",
            )
        if refs is not None:
            self._store_reference(stream, refs, rec)
        if self.population is not None and stream == self.population[0]:
            self._store_member(rec)
        if plans is None:
            return
        self.records_in[stream] += 1
        for i, plan in enumerate(plans):
            self._map(plan, i, msg, emit, final=False)

    def _store_reference(
        self, stream: str, refs: list[tuple[str, str, tuple[str, ...]]], rec: dict[str, Any]
    ) -> None:
        assert self.store is not None
        for name, key, keep in refs:
            k = rec.get(key)
            if k is None:
                raise RecordError(stream, "<no key>", key, f"lookup {name!r}: record has no {key}")
            kept = {f: rec[f] for f in keep if f in rec}
            row_field = self.many.get(name)
            if row_field is not None:
                row = rec.get(row_field)
                if row is None:
                    raise RecordError(
                        stream, self.record_key(stream, rec), row_field,
                        f"lookup {name!r} keeps rows by {row_field}, and this record has none",
                    )  # fmt: skip
                rows = dict(self.store.get(name, k) or {})
                rows[LookupStore.key(row)] = kept  # a re-sent row replaces itself
                kept = rows
            self.store.put(name, k, kept)
            self.stored[name] += 1

    def _store_member(self, rec: dict[str, Any]) -> None:
        """Remember whether this person is in the population (their id and a flag, nothing
        else): records of the other streams are sent only for people who are."""
        assert self.store is not None and self.population is not None
        _, key, predicate = self.population
        k = rec.get(key)
        if k is not None and k != "":
            self.store.put(POPULATION, k, {"in": bool(predicate(rec))})

    def _population(self, plan: StreamPlan, index: int, msg: dict[str, Any], *, final: bool) -> str:
        """``in``, ``out`` or ``parked``: whether the person of this record is in the
        population. Every record waits for the end of the input (parked on disk): the person's
        own record may come later in this run, and may move them in or out of the population
        (a source that sends people after their rows, as map-hr's canonical workers come after
        their positions); never seen by then (nor in an earlier run) is ``out``."""
        assert self.store is not None and plan.person is not None
        try:
            person = plan.person(msg["record"])
        except Exception:  # no readable person: not provably in the population
            person = None
        if person is None or person == "":
            return "out"
        if not final:
            self.store.defer(f"{plan.input_stream}\x00{index}", msg)
            return "parked"
        member = self.store.get(POPULATION, person)
        if member is None:
            return "out"
        return "in" if member.get("in") else "out"

    def record_key(self, stream: str, rec: Mapping[str, Any]) -> str:
        keys = self.keys.get(stream) or (["id"] if "id" in rec else [])
        if not keys:
            return "<no key>"
        return ",".join(f"{k}={rec.get(k)}" for k in keys)

    def _map(
        self, plan: StreamPlan, index: int, msg: dict[str, Any], emit: Emit, *, final: bool
    ) -> None:
        rec = msg["record"]
        if plan.person is not None:
            where = self._population(plan, index, msg, final=final)
            if where == "parked":
                return
            if where == "out":
                self.filtered[plan.output_stream] += 1
                self.outside[plan.output_stream] += 1
                return
        if plan.pre_filter is not None and not plan.pre_filter(rec):
            self.filtered[plan.output_stream] += 1
            return
        if plan.joins and not self._join(plan, index, msg, final=final):
            return
        if plan.post_filter is not None and not plan.post_filter(rec):
            self.filtered[plan.output_stream] += 1
            return
        if plan.sor_dropped:
            for name, get, owner in plan.sor_dropped:
                try:
                    value = get(rec)
                except Exception:
                    value = None
                if value is not None and value != "":
                    self.sor_dropped[(plan.output_stream, name, owner)] += 1
        try:
            out = plan.apply(rec)
        except FieldFailure as exc:
            self.bad_record(plan, rec, exc.field, exc.reason)
            return
        if self.letters is not None and self.letters.watching:
            self.letters.mapped(plan.output_stream, self.record_key(plan.input_stream, rec))
        if plan.output_stream not in self.schema_sent:  # e.g. a SCHEMA that came mid-stream
            emit(self._schema_message(plan, self.schemas.get(plan.input_stream), None))
        message: dict[str, Any] = {"type": "RECORD", "stream": plan.output_stream, "record": out}
        if "version" in msg:
            message["version"] = msg["version"]
        if "time_extracted" in msg:
            message["time_extracted"] = msg["time_extracted"]
        self.records_out[plan.output_stream] += 1
        emit(message)

    def bad_record(
        self, plan: StreamPlan, rec: dict[str, Any], field: str, reason: str, *, join: bool = False
    ) -> None:
        """A record this profile cannot map: a dead letter (what the destination may receive,
        the fields that failed and why), or the run stops (``bad_records: fail``)."""
        key = self.record_key(plan.input_stream, rec)
        shown = key.encode("utf-8", "backslashreplace").decode()  # an unpaired surrogate as \ud800
        if self.letters is None:
            raise RecordError(plan.input_stream, shown, field, reason + self._on_line())
        salvaged, failures = plan.salvage(rec)
        if join or not failures:  # a join failed: the fields that read it fail with it
            failures = [(field, reason)]
        error = "; ".join(f"field {name}: {why}" for name, why in failures)
        self.letters.dead(plan.output_stream, key, salvaged, f"stream {plan.input_stream}, "
                          f"record {key}: {error}", failures[0][0])  # fmt: skip
        self.dead[plan.output_stream] += 1
        logger.warning(
            "profile %s: record %s of stream %r is a dead letter (not sent to %s): %s",
            self.profile.name,
            shown,
            plan.input_stream,
            plan.output_stream,
            error,
        )

    def fast_record(self, plan: StreamPlan) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
        """A record function for a plan without joins: the message in, the message out."""
        pre, post, apply = plan.pre_filter, plan.post_filter, plan.apply
        out_stream, in_stream = plan.output_stream, plan.input_stream
        counts = [0, 0, 0]  # in, out, filtered: folded into the Counters at the end
        self._fast_counts.append((plan, counts))
        sor = plan.sor_dropped
        sor_counts = self.sor_dropped
        letters = self.letters

        def fast(msg: dict[str, Any]) -> dict[str, Any] | None:
            rec = msg.get("record")
            if type(rec) is not dict:
                raise RecordError(
                    in_stream, "<none>", None, f'RECORD whose "record" is {json_kind(rec)}'
                )
            counts[0] += 1
            if (pre is not None and not pre(rec)) or (post is not None and not post(rec)):
                counts[2] += 1
                return None
            if sor:
                for name, get, owner in sor:
                    value = get(rec)
                    if value is not None and value != "":
                        sor_counts[(out_stream, name, owner)] += 1
            try:
                out = apply(rec)
            except FieldFailure as exc:
                self.bad_record(plan, rec, exc.field, exc.reason)
                return None
            if letters is not None and letters.watching:
                letters.mapped(out_stream, self.record_key(in_stream, rec))
            counts[1] += 1
            if len(msg) == 3:
                return {"type": "RECORD", "stream": out_stream, "record": out}
            message: dict[str, Any] = {"type": "RECORD", "stream": out_stream, "record": out}
            if "version" in msg:
                message["version"] = msg["version"]
            if "time_extracted" in msg:
                message["time_extracted"] = msg["time_extracted"]
            return message

        return fast

    def _fold_fast_counts(self) -> None:
        for plan, counts in self._fast_counts:
            for counter, name, n in (
                (self.records_in, plan.input_stream, counts[0]),
                (self.records_out, plan.output_stream, counts[1]),
                (self.filtered, plan.output_stream, counts[2]),
            ):
                if n:
                    counter[name] += n
            counts[:] = [0, 0, 0]

    def _join(self, plan: StreamPlan, index: int, msg: dict[str, Any], *, final: bool) -> bool:
        assert self.store is not None
        rec = msg["record"]
        for j in plan.joins:
            key = j.get_key(rec)
            if j.lookup in self.many:
                # every row of the key: complete only once the whole input has been read
                if not final:
                    for done in plan.joins:
                        rec.pop(done.name, None)
                    self.store.defer(f"{plan.input_stream}\x00{index}", msg)
                    return False
                found_rows = self.store.get(j.lookup, key) if key not in (None, "") else None
                rec[j.name] = list((found_rows or {}).values())
                continue
            if key is None or key == "":
                if j.optional:
                    rec[j.name] = None
                    continue
                self.bad_record(
                    plan, rec, j.on, f"no value to join lookup {j.lookup!r} on", join=True
                )
                return False
            found = self.store.get(j.lookup, key)
            if found is None:
                if j.optional:
                    rec[j.name] = None
                    continue
                if not final:
                    # the reference may still arrive later in this run: park the record
                    for done in plan.joins:
                        rec.pop(done.name, None)
                    self.store.defer(f"{plan.input_stream}\x00{index}", msg)
                    return False
                stream = self.lookup_streams[j.lookup]
                self.bad_record(
                    plan,
                    rec,
                    j.on,
                    f"lookup {j.lookup!r} has no record with {j.on} = {key!r} "
                    f"(not in this run's {stream!r} stream nor in the store); run a full "
                    f"refresh of the {stream!r} stream",
                    join=True,
                )
                return False
            rec[j.name] = found
        return True

    # --- ACTIVATE_VERSION ---------------------------------------------------------------------

    def on_activate_version(self, msg: dict[str, Any], raw: bytes | None, emit: Emit) -> None:
        stream = self._stream(msg)
        plans = self.plans.get(stream)
        if plans is None:
            if stream not in self.lookups:
                self._unknown(stream, msg, raw, emit)
            return
        for plan in plans:
            self._control({**msg, "stream": plan.output_stream}, emit)

    # --- end ----------------------------------------------------------------------------------

    def finish(self, emit: Emit) -> None:
        if self.store is not None:
            if self.store.pending_count:
                logger.info(
                    "%d record(s) waited for a lookup; joining them now", self.store.pending_count
                )
                for tag, msg in self.store.drain():
                    stream, _, idx = tag.partition("\x00")
                    self._map(self.plans[stream][int(idx)], int(idx), msg, emit, final=True)
            self.store.close()
            self.store = None
        for message in self.held:
            emit(message)
        self.held.clear()
        if self.letters is not None:
            self.letters.flush()
        self.log_summary()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def log_summary(self) -> None:
        self._fold_fast_counts()
        for stream, n in sorted(self.records_in.items()):
            logger.info("profile %s: %d record(s) in from %r", self.profile.name, n, stream)
        for stream, n in sorted(self.records_out.items()):
            logger.info("profile %s: %d record(s) out to %r", self.profile.name, n, stream)
        for stream, n in sorted(self.filtered.items()):
            logger.info("profile %s: %d record(s) filtered out of %r", self.profile.name, n, stream)
        for stream, n in sorted(self.outside.items()):
            logger.info(
                "profile %s: %d record(s) of people outside its population kept out of %r",
                self.profile.name,
                n,
                stream,
            )
        for name, n in sorted(self.stored.items()):
            logger.info("profile %s: lookup %r stored %d record(s)", self.profile.name, name, n)
        for stream, n in sorted(self.dead.items()):
            logger.warning(
                "profile %s: %d record(s) for %r are dead letters, the others were delivered "
                "(`hrsync dlq list` shows field and reason; fix them in the source system)",
                self.profile.name,
                n,
                stream,
            )
        for stream, n in sorted(self.denied.items()):
            logger.warning("unknown stream %r denied: %d record(s) dropped", stream, n)
        for stream, n in sorted(self.passed.items()):
            logger.info("unknown stream %r passed through: %d record(s)", stream, n)
        for (stream, name, owner), n in sorted(self.sor_dropped.items()):
            logger.warning(
                "system of record: dropped %s.%s from %s in %d record(s) (owner: %s)",
                stream,
                name,
                self.profile.source_system,
                n,
                owner,
            )


#: profiles compiled by :func:`warm` ahead of forked runs, by what they were compiled from
_WARMED: dict[tuple[str, str, str, str], tuple[Profile, list[StreamPlan]]] = {}


def _source(config: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """What the configured profile compiles from: its file, its text, the HMAC key and the
    system-of-record overrides."""
    path = resolve_profile_path(str(config["profile"]), config.get("profiles_dir"))
    key = config.get("hmac_key") or os.environ.get(DEFAULT_ENV) or ""
    sor = json.dumps(config.get("system_of_record"), sort_keys=True, default=str)
    return str(path), path.read_text("utf-8"), str(key), sor


def _plans(
    source: tuple[str, str, str, str], config: Mapping[str, Any]
) -> tuple[Profile, list[StreamPlan]]:
    warmed = _WARMED.get(source)
    if warmed is not None:  # compiled ahead from the same text, key and overrides
        return warmed
    path, text, key, _ = source
    profile = parse_profile(text, path)
    try:
        pseudo = Pseudonymizer(key) if key else None
    except PseudonymKeyError as exc:
        raise ConfigError(str(exc)) from exc
    return profile, compile_profile(profile, pseudo, config.get("system_of_record"))


def warm(config: Mapping[str, Any]) -> None:
    """Compile the configured profile once in a process whose forked children each build an
    engine from ``config`` (the webhook fast path): they find it compiled. A changed profile
    file, key or override is compiled again by the run that sees it."""
    source = _source(config)
    profile, _ = _WARMED[source] = _plans(source, config)
    # the keys of the lookup store's rows sealed by other processes (the scheduled runs): each
    # run would otherwise derive them (a scrypt each) when it reads a row of theirs
    if profile.data.get("lookups") or profile.data.get("population"):
        state_dir = config.get("state_dir")
        base = Path(state_dir) if state_dir else Path(".hrsync") / "map-hr"
        derive_keys(recent_salts(base / f"{profile.name}.sqlite"))


def build_engine(config: Mapping[str, Any]) -> Engine:
    """Load and compile the configured profile into an engine."""
    profile, plans = _plans(_source(config), config)
    return Engine(
        profile,
        plans,
        unknown_streams=config.get("unknown_streams")
        or profile.data.get("unknown_streams", "deny"),
        state_dir=config.get("state_dir"),
        lookup_retention_days=config.get("lookup_retention_days"),
        bad_records=config.get("bad_records") or "dead_letter",
    )


#: a JSON surrogate escape (orjson refuses a lone one) or a byte that is not UTF-8
_UNENCODABLE = re.compile(rb"\\u[dD][89a-fA-F]|[\x80-\xff]")


def _unencodable_record(engine: Engine, n: int, line: bytes, emit: Emit) -> bool:
    """A line orjson refused: a RECORD holding text no UTF-8 encoder takes (an unpaired UTF-16
    surrogate, or bytes that are not UTF-8) is its own dead letter naming stream, record, field
    and reason (``bad_records: fail`` stops the run naming them); a record of a stream the
    profile does not map is passed on as it came (the target then refuses it). False: not
    such a line (the caller says what is wrong with it). Only on orjson's error path."""
    if not _UNENCODABLE.search(line):
        return False
    try:
        msg = json.loads(line.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return False
    if type(msg) is not dict or msg.get("type") != "RECORD" or type(msg.get("record")) is not dict:
        return False
    bad = unencodable(msg["record"])
    if bad is None:
        return False
    field, reason = bad
    engine.line = n
    plans = engine.plans.get(msg.get("stream"))  # type: ignore[arg-type]
    if not plans:
        engine.handle(msg, line, emit)
        return True
    for plan in plans:
        engine.bad_record(plan, msg["record"], field, reason)
    return True


def run_stream(engine: Engine, source: IO[bytes], sink: IO[bytes]) -> Counter[str]:
    """Map every line of ``source`` to ``sink`` (bytes, buffered). Returns message counts."""
    out = (
        io.BufferedWriter(sink, buffer_size=WRITE_BUFFER)
        if not isinstance(sink, io.BufferedWriter | io.BytesIO)
        else sink
    )
    write = out.write
    dumps = orjson.dumps
    opt = orjson.OPT_APPEND_NEWLINE
    loads = orjson.loads

    def emit(message: Any) -> None:
        if isinstance(message, bytes):
            write(message if message.endswith(b"\n") else message + b"\n")
        else:
            write(dumps(message, default=_default, option=opt))

    counts: Counter[str] = Counter()
    # hot path: records of streams with one plan and no joins skip the generic dispatch
    fast = {
        s: engine.fast_record(ps[0])
        for s, ps in engine.plans.items()
        if len(ps) == 1
        and not ps[0].joins
        and ps[0].person is None
        and s not in engine.lookups
        and (engine.population is None or s != engine.population[0])
    }
    schema_sent = engine.schema_sent
    outputs = {s: engine.plans[s][0].output_stream for s in fast}
    n_records = 0
    try:
        for n, line in enumerate(source, 1):
            try:
                msg = loads(line)
            except orjson.JSONDecodeError as exc:
                if not line.strip():
                    continue
                if _unencodable_record(engine, n, line, emit):
                    continue  # that record's dead letter (or, unmapped, passed on as it came)
                raise ConfigError(f"line {n}: input is not JSON ({exc}): {line[:200]!r}") from exc
            if type(msg) is not dict:
                raise ConfigError(
                    f"line {n}: a Singer message must be a JSON object, got {json_kind(msg)}: "
                    f"{line[:200]!r}"
                )
            kind: Any = msg.get("type")
            if kind == "RECORD":
                n_records += 1
                stream: Any = msg.get("stream")
                fn = fast.get(stream) if type(stream) is str else None
                if fn is not None and outputs[stream] in schema_sent:
                    out_msg = fn(msg)
                    if out_msg is not None:
                        write(dumps(out_msg, default=_default, option=opt))
                    continue
            engine.line = n
            engine.handle(msg, line, emit)
            if kind != "RECORD":
                counts[kind] += 1
        engine.finish(emit)
    finally:
        counts["RECORD"] += n_records
        out.flush()
        engine.close()
    return counts
