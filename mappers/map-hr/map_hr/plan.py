"""Compile a profile once into per-stream plans; run a plan per record.

A plan's record function is generated Python source (one straight-line function per output
stream): plain copies are inlined as ``rec.get("x")``, everything else calls a closure built
once from the field spec. No per-record schema validation, no per-record interpretation of the
profile: that is what makes a generic mapper slow.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hrsync import pii
from hrsync.pseudonym import Pseudonymizer

from . import paths
from .profile import KeyPath, Profile, canonical_schema, field_paths, field_pii_class
from .transforms import (
    COMPUTE_SCHEMA,
    OUTPUT_SCHEMA,
    Transform,
    TransformError,
    build_compute,
    build_transform,
    clean_text,
    is_empty,
    transform_name,
)

Getter = Callable[[dict[str, Any]], Any]


class FieldFailure(Exception):
    """Raised inside a plan: which output field failed and why (the mapper adds the record)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass
class FieldPlan:
    name: str
    spec: dict[str, Any]
    key_path: KeyPath
    pii_class: str | None
    required: bool
    code: FieldCode
    sources: list[str]


@dataclass
class JoinPlan:
    name: str  # "$candidate"
    lookup: str
    on: str
    get_key: Getter
    optional: bool


@dataclass
class StreamPlan:
    input_stream: str
    output_stream: str
    key_path: KeyPath
    key_properties: list[str]
    fields: list[FieldPlan]
    joins: list[JoinPlan]
    pre_filter: Callable[[dict[str, Any]], bool] | None
    post_filter: Callable[[dict[str, Any]], bool] | None
    apply: Callable[[dict[str, Any]], dict[str, Any]]
    canonical: dict[str, Any] | None
    emit_nulls: bool
    # system of record: fields dropped because the source is not the owner
    sor_dropped: list[tuple[str, Getter, str]] = field(default_factory=list)
    source: str = ""  # generated code, for debugging
    # the person a record is about (streams of a profile with a population, but its own)
    person: Getter | None = None

    def output_schema(
        self, input_schema: Mapping[str, Any] | None, lookup_schemas: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The output SCHEMA: exactly the emitted fields, required only where guaranteed."""
        props: dict[str, Any] = {}
        required: list[str] = []
        for fp in self.fields:
            prop = _field_schema(fp, self.canonical, input_schema, lookup_schemas)
            if fp.required:
                required.append(fp.name)
            else:
                prop = _nullable(prop)
            if fp.pii_class is not None:
                prop["x-pii"] = fp.pii_class
            elif "x-pii" in prop:
                del prop["x-pii"]
            props[fp.name] = prop
        schema: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "additionalProperties": False,
        }
        if required:
            schema["required"] = required
        return schema

    def salvage(self, rec: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """For a record ``apply`` refused: every field that maps (what the destination may
        receive, nothing more) and each field that does not, with its reason. The reasons name
        no value: a dead letter's error is shown to operators and alerts."""
        out: dict[str, Any] = {}
        failures: list[tuple[str, str]] = []
        for fp in self.fields:
            try:
                value = _field_value(fp.code, rec)
            except TransformError as exc:
                failures.append((fp.name, _redact(exc.reason, fp, rec)))
                continue
            if isinstance(value, str) and not fp.spec.get("raw_text"):
                value = clean_text(value)
            if fp.required and (value is None or value == ""):
                failures.append((fp.name, "required value is missing"))
                continue
            if value is not None or self.emit_nulls:
                out[fp.name] = value
        return out, failures


def _field_value(code: FieldCode, rec: dict[str, Any]) -> Any:
    """One field, the way the generated record function computes it."""
    if code.copy_of is not None:
        return rec.get(code.copy_of)
    if code.src_key is not None:
        value = rec.get(code.src_key)
        if code.transform is not None:
            value = code.transform(value, rec)
        if code.hmac is not None and value is not None:
            value = code.hmac(value)
        return value
    assert code.fn is not None
    return code.fn(rec)


def _redact(reason: str, fp: FieldPlan, rec: dict[str, Any]) -> str:
    """``reason`` without the field's source values (they may be personal data)."""
    for path in fp.sources:
        try:
            value = paths.compile_path(path)(rec)
        except Exception:  # a path that cannot be read has nothing to redact
            value = None
        if value is None or isinstance(value, bool):
            continue
        for shown in {repr(value), repr(str(value)), repr(str(value).strip())}:
            if len(shown) > 2:
                reason = reason.replace(shown, "the value")
    return reason


def _nullable(prop: dict[str, Any]) -> dict[str, Any]:
    t = prop.get("type")
    if isinstance(t, str) and t != "null":
        prop["type"] = [t, "null"]
    elif isinstance(t, list) and "null" not in t:
        prop["type"] = [*t, "null"]
    if isinstance(prop.get("enum"), list) and None not in prop["enum"]:
        prop["enum"] = [*prop["enum"], None]
    return prop


def _strip_null(prop: dict[str, Any]) -> dict[str, Any]:
    t = prop.get("type")
    if isinstance(t, list) and "null" in t:
        rest = [x for x in t if x != "null"]
        prop["type"] = rest[0] if len(rest) == 1 else rest
    if isinstance(prop.get("enum"), list):
        prop["enum"] = [v for v in prop["enum"] if v is not None]
    return prop


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string"


def _field_schema(
    fp: FieldPlan,
    canonical: Mapping[str, Any] | None,
    input_schema: Mapping[str, Any] | None,
    lookup_schemas: Mapping[str, Any],
) -> dict[str, Any]:
    spec = fp.spec
    prop: dict[str, Any]
    if "schema" in spec:
        prop = copy.deepcopy(spec["schema"])
    elif canonical is not None and fp.name in canonical.get("properties", {}):
        prop = copy.deepcopy(canonical["properties"][fp.name])
    elif spec.get("hmac"):
        prop = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
    elif spec.get("transform"):
        t = spec["transform"]
        last = t[-1] if isinstance(t, list) and t else t
        prop = dict(OUTPUT_SCHEMA.get(transform_name(last), {}))
    elif spec.get("compute") in COMPUTE_SCHEMA:
        prop = dict(COMPUTE_SCHEMA[spec["compute"]])
    elif "value_map" in spec:
        types = sorted({_json_type(v) for v in spec["value_map"].values() if v is not None})
        prop = {"type": types[0] if len(types) == 1 else types}
    elif "const" in spec:
        prop = {"type": _json_type(spec["const"])} if spec["const"] is not None else {}
    else:
        prop = {}
        for p in fp.sources[:1]:
            head = paths.head(p)
            if head.startswith("$"):
                src = lookup_schemas.get(head)
                found = paths.schema_at(src, p.split(".", 1)[1]) if src and "." in p else None
            else:
                found = paths.schema_at(dict(input_schema) if input_schema else None, p)
            if found is not None:
                prop = copy.deepcopy(found)
    prop = _strip_null(prop)
    if "default" in spec and spec["default"] is not None and "type" not in prop:
        prop["type"] = _json_type(spec["default"])
    return prop


# --- compiling fields ---------------------------------------------------------------------------


def _value_mapper(spec: Mapping[str, Any]) -> Callable[[Any], Any]:
    table: dict[Any, Any] = dict(spec["value_map"])
    folded = {str(k).strip().casefold(): v for k, v in table.items()}
    unmapped = spec.get("unmapped", "error") or "null"

    def vmap(value: Any) -> Any:
        try:
            return table[value]
        except (KeyError, TypeError):
            pass
        key = str(value).strip().casefold()
        if key in folded:
            return folded[key]
        if unmapped == "null":
            return None
        if unmapped == "keep":
            return value
        choices = ", ".join(repr(k) for k in list(table)[:12])
        raise TransformError(f"{value!r} is not in the value map (known: {choices})")

    return vmap


def _hmac_fn(spec: Mapping[str, Any], pseudo: Pseudonymizer | None) -> Callable[[Any], str]:
    if pseudo is None:
        raise ValueError("no hmac key")
    opts = spec["hmac"] if isinstance(spec["hmac"], dict) else {}
    keyed = pseudo.context(opts.get("context", ""))
    return keyed.pseudonymise


@dataclass
class FieldCode:
    """How the generated record function computes one field."""

    copy_of: str | None = None  # plain copy of a top-level key
    src_key: str | None = None  # top-level key, then optional transform and hmac (inlined)
    transform: Transform | None = None
    hmac: Callable[[Any], str] | None = None
    fn: Getter | None = None  # anything else: one compiled closure


def _compile_field(spec: dict[str, Any], pseudo: Pseudonymizer | None) -> FieldCode:
    src = spec.get("from")
    tspecs = spec.get("transform") or []
    tlist = tspecs if isinstance(tspecs, list) else [tspecs]
    transforms: list[Transform] = [build_transform(t, paths.compile_path) for t in tlist]
    hmac = _hmac_fn(spec, pseudo) if spec.get("hmac") else None
    simple_src = isinstance(src, str) and paths.is_simple(src) and not src.startswith("$")
    if simple_src and not any(k in spec for k in ("compute", "value_map", "default")):
        if not transforms and hmac is None:
            return FieldCode(copy_of=str(src))
        if len(transforms) <= 1:
            return FieldCode(
                src_key=str(src), transform=transforms[0] if transforms else None, hmac=hmac
            )

    getter: Getter
    if "compute" in spec:
        args = {
            k: (paths.compile_path(v) if isinstance(v, str) else _coalesce([*v]))
            for k, v in (spec.get("args") or {}).items()
        }
        sources = [paths.compile_path(p) for p in ([src] if isinstance(src, str) else src or [])]
        getter = build_compute(spec["compute"], args, spec, sources)
    elif "const" in spec:
        const = spec["const"]

        def getter(_rec: dict[str, Any]) -> Any:
            return const

    elif isinstance(src, list):
        getter = _coalesce(src)
    else:
        getter = paths.compile_path(str(src))

    has_default = "default" in spec
    default = spec.get("default")
    vmap = _value_mapper(spec) if "value_map" in spec else None

    def fn(rec: dict[str, Any]) -> Any:
        value = getter(rec)
        if has_default and is_empty(value):
            value = default
        if value is None:
            return None
        if vmap is not None:
            value = vmap(value)
        for t in transforms:
            value = t(value, rec)
        if hmac is not None and value is not None:
            value = hmac(value)
        return value

    return FieldCode(fn=fn)


def _coalesce(sources: list[str]) -> Getter:
    getters = [paths.compile_path(p) for p in sources]

    def coalesce(rec: dict[str, Any]) -> Any:
        for g in getters:
            value = g(rec)
            if not is_empty(value):
                return value
        return None

    return coalesce


def _condition(cond: Mapping[str, Any]) -> Callable[[dict[str, Any]], bool]:
    get = paths.compile_path(cond["field"])
    fold = bool(cond.get("ignore_case"))

    def norm(v: Any) -> Any:
        return v.strip().casefold() if fold and isinstance(v, str) else v

    checks: list[Callable[[Any], bool]] = []
    if "equals" in cond:
        want = norm(cond["equals"])
        checks.append(lambda v: norm(v) == want)
    if "not_equals" in cond:
        avoid = norm(cond["not_equals"])
        checks.append(lambda v: norm(v) != avoid)
    if "in" in cond:
        allowed = [norm(x) for x in cond["in"]]
        checks.append(lambda v: norm(v) in allowed)
    if "not_in" in cond:
        denied = [norm(x) for x in cond["not_in"]]
        checks.append(lambda v: norm(v) not in denied)
    if "exists" in cond:
        want_exists = bool(cond["exists"])
        checks.append(lambda v: (not is_empty(v)) == want_exists)

    def check(rec: dict[str, Any]) -> bool:
        value = get(rec)
        return all(c(value) for c in checks)

    return check


def _all(preds: list[Callable[[dict[str, Any]], bool]]) -> Callable[[dict[str, Any]], bool] | None:
    if not preds:
        return None
    if len(preds) == 1:
        return preds[0]

    def every(rec: dict[str, Any]) -> bool:
        return all(p(rec) for p in preds)

    return every


def _generate(
    fields: list[FieldPlan], emit_nulls: bool
) -> tuple[Callable[[dict[str, Any]], dict[str, Any]], str]:
    """Straight-line record function for a stream's fields."""
    ns: dict[str, Any] = {
        "FieldFailure": FieldFailure,
        "TransformError": TransformError,
        "clean": clean_text,
    }
    lines = ["def apply(rec):", "    g = rec.get", "    out = {}"]
    for i, fp in enumerate(fields):
        name = repr(fp.name)
        code = fp.code
        if code.copy_of is not None:
            lines.append(f"    v = g({code.copy_of!r})")
        else:
            lines.append("    try:")
            if code.src_key is not None:
                lines.append(f"        v = g({code.src_key!r})")
                if code.transform is not None:
                    ns[f"t{i}"] = code.transform
                    lines.append(f"        v = t{i}(v, rec)")
                if code.hmac is not None:
                    ns[f"h{i}"] = code.hmac
                    lines += ["        if v is not None:", f"            v = h{i}(v)"]
            else:
                ns[f"f{i}"] = code.fn
                lines.append(f"        v = f{i}(rec)")
            lines += [
                "    except TransformError as e:",
                f"        raise FieldFailure({name}, e.reason) from e",
            ]
        if not fp.spec.get("raw_text"):
            # the character policy for every text that leaves (transforms.clean_text): one
            # C-level isprintable() per value; only text with a control or format character
            # is rewritten
            lines += ["    if v.__class__ is str and not v.isprintable():", "        v = clean(v)"]
        if fp.required:
            lines += [
                "    if v is None or v == '':",
                f"        raise FieldFailure({name}, 'required value is missing')",
                f"    out[{name}] = v",
            ]
        elif emit_nulls:
            lines.append(f"    out[{name}] = v")
        else:
            lines += ["    if v is not None:", f"        out[{name}] = v"]
    lines.append("    return out")
    source = "\n".join(lines) + "\n"
    exec(compile(source, "<map-hr plan>", "exec"), ns)  # noqa: S102 - our own generated code
    return ns["apply"], source


def compile_profile(
    prof: Profile,
    pseudo: Pseudonymizer | None,
    system_of_record: Mapping[str, str] | None = None,
) -> list[StreamPlan]:
    """Every output stream of the profile as a plan."""
    owners = {**(prof.data.get("system_of_record") or {}), **(system_of_record or {})}
    population_filter = population_conditions(prof)
    plans: list[StreamPlan] = []
    for stream, idx, spec in prof.stream_specs():
        base: KeyPath = ("streams", stream) if idx is None else ("streams", stream, idx)
        out_stream = spec.get("output_stream", stream)
        canonical = canonical_schema(spec["schema"].split(":", 1)[1]) if "schema" in spec else None
        fields: list[FieldPlan] = []
        dropped: list[tuple[str, Getter, str]] = []
        for out_name, fspec in spec["fields"].items():
            kp: KeyPath = (*base, "fields", out_name)
            if fspec.get("hmac") and pseudo is None:
                raise prof.error(
                    (*kp, "hmac"),
                    "field is pseudonymised but no hmac_key is configured "
                    "(set MAP_HR_HMAC_KEY / the hmac_key setting)",
                )
            try:
                code = _compile_field(fspec, pseudo)
            except (ValueError, paths.PathError) as exc:
                raise prof.error(kp, str(exc)) from exc
            owner = owners.get(f"{out_stream}.{out_name}", owners.get(out_name))
            if owner is not None and owner != prof.source_system:
                src_key = code.copy_of or code.src_key
                counter_get = paths.compile_path(src_key) if src_key else code.fn
                assert counter_get is not None
                dropped.append((out_name, counter_get, owner))
                continue
            required = bool(fspec.get("required")) or out_name in (spec.get("key_properties") or [])
            fields.append(
                FieldPlan(
                    name=out_name,
                    spec=fspec,
                    key_path=kp,
                    pii_class=fspec["pii"]
                    if "pii" in fspec
                    else field_pii_class(prof, out_name, fspec, canonical),
                    required=required,
                    code=code,
                    sources=field_paths(fspec),
                )
            )
        joins = [
            JoinPlan(
                name=f"${jname}",
                lookup=j["lookup"],
                on=j["on"],
                get_key=paths.compile_path(j["on"]),
                optional=bool(j.get("optional")),
            )
            for jname, j in (spec.get("join") or {}).items()
        ]
        conds = spec.get("filter") or []
        conds = conds if isinstance(conds, list) else [conds]
        if population_filter and stream == prof.data["population"]["stream"]:
            conds = [*population_filter, *conds]
        pre = [_condition(c) for c in conds if not paths.head(c["field"]).startswith("$")]
        post = [_condition(c) for c in conds if paths.head(c["field"]).startswith("$")]
        emit_nulls = bool(spec.get("emit_nulls"))
        apply, source = _generate(fields, emit_nulls)
        key_props = list(spec.get("key_properties") or [])
        if not key_props and canonical is not None:
            key_props = [k for k in canonical.get("x-key-properties", []) if k in spec["fields"]]
        plans.append(
            StreamPlan(
                input_stream=stream,
                output_stream=out_stream,
                key_path=base,
                key_properties=key_props,
                fields=fields,
                joins=joins,
                pre_filter=_all(pre),
                post_filter=_all(post),
                apply=apply,
                canonical=canonical,
                emit_nulls=emit_nulls,
                sor_dropped=dropped,
                source=source,
                person=paths.compile_path(spec["person"]) if "person" in spec else None,
            )
        )
    return plans


def population_conditions(prof: Profile) -> list[dict[str, Any]]:
    """The profile's population filter as a list of conditions (empty: everyone)."""
    population = prof.data.get("population")
    if not population:
        return []
    conds = population["filter"]
    return list(conds) if isinstance(conds, list) else [conds]


def population_predicate(prof: Profile) -> Callable[[dict[str, Any]], bool] | None:
    """Whether a record of the population's stream is a person in the population."""
    return _all([_condition(c) for c in population_conditions(prof)])


def runtime_pii_violations(
    plan: StreamPlan, input_schema: Mapping[str, Any], lookup_schemas: Mapping[str, Any]
) -> list[tuple[FieldPlan, str, str]]:
    """Fields that read an input property the incoming SCHEMA annotates as sensitive."""
    found: list[tuple[FieldPlan, str, str]] = []
    for fp in plan.fields:
        if fp.spec.get("sensitive_ok") or fp.spec.get("hmac"):
            continue
        if fp.spec.get("compute") in ("truthy", "equals"):
            continue
        for p in fp.sources:
            head = paths.head(p)
            if head.startswith("$"):
                src = lookup_schemas.get(head)
                prop = paths.schema_at(src, p.split(".", 1)[1]) if src and "." in p else None
            else:
                prop = paths.schema_at(dict(input_schema), p)
            if prop is None or pii.ANNOTATION not in prop:
                continue
            cls = pii.classify(p, prop)
            if pii.is_sensitive(cls):
                assert cls is not None
                found.append((fp, p, cls))
    return found
