"""Mapping profiles: load (YAML or JSON), validate against profile.schema.json, check meaning.

Every problem is a :class:`ProfileError` naming the file, the key path, the line and what is
wrong, e.g. ``profiles/ats_to_hris.yml:42: streams.offers.fields.payRate: sends
sensitive.salary (field payRate); add `sensitive_ok: true` to acknowledge``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
import yaml
from jsonschema.exceptions import best_match

from hrsync import pii
from hrsync.errors import ConfigError

from . import paths
from .transforms import transform_name

PROFILE_SUFFIXES = (".yml", ".yaml", ".json")
KeyPath = tuple[str | int, ...]


class ProfileError(ConfigError):
    """A profile that cannot be used; the message names file, key path, line and problem."""

    def __init__(self, file: str, key_path: KeyPath, line: int | None, problem: str) -> None:
        self.file = file
        self.key_path = key_path
        self.line = line
        self.problem = problem
        where = f"{file}:{line}" if line else file
        keys = format_key_path(key_path)
        super().__init__(f"{where}: {keys + ': ' if keys else ''}{problem}")


def format_key_path(key_path: KeyPath) -> str:
    out = ""
    for k in key_path:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out


# --- YAML with line marks, YAML 1.2 booleans --------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader where only true/false are booleans (``on:``, ``no``, ``Y`` stay strings)."""


#: the same loader on libyaml's C parser when PyYAML was built with it (~10x faster); its
#: resolver and constructor are the Python ones, so the result is the same
_FastLoader: type[yaml.SafeLoader] = type(
    "_FastLoader", (getattr(yaml, "CSafeLoader", yaml.SafeLoader),), {}
)

for _cls in (_Loader, _FastLoader):
    _cls.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _cls.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )


def _parse(text: str, loader_class: type[yaml.SafeLoader]) -> tuple[yaml.Node | None, Any]:
    """The document's node and its value from one parse (``yaml.compose`` + ``yaml.load``)."""
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return node, (None if node is None else loader.construct_document(node))
    finally:
        loader.dispose()


def _marks(node: yaml.Node, prefix: KeyPath, out: dict[KeyPath, int]) -> None:
    out[prefix] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*prefix, key)] = key_node.start_mark.line + 1
            _marks(value_node, (*prefix, key), out)
            out[(*prefix, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _marks(item, (*prefix, i), out)


def load_document(text: str, file: str) -> tuple[Any, dict[KeyPath, int]]:
    """Parse YAML (or JSON, a YAML subset) and map every key path to its line."""
    try:
        try:
            node, data = _parse(text, _FastLoader)
        except yaml.YAMLError:
            # errors are reported from the pure-Python parser: its messages and marks
            node, data = _parse(text, _Loader)
    except yaml.MarkedYAMLError as exc:
        # an unclosed bracket is found at the end of the file: point at where it opened
        mark = exc.context_mark or exc.problem_mark
        line = mark.line + 1 if mark else None
        problem = f"{exc.context}, {exc.problem}" if exc.context else str(exc.problem)
        raise ProfileError(file, (), line, f"not valid YAML/JSON: {problem}") from exc
    except yaml.YAMLError as exc:
        try:
            return json.loads(text), {}
        except json.JSONDecodeError:
            raise ProfileError(file, (), None, f"not valid YAML/JSON: {exc}") from exc
    marks: dict[KeyPath, int] = {}
    if node is not None:
        _marks(node, (), marks)
    return data, marks


# --- the profile ------------------------------------------------------------------------------


@cache
def profile_schema() -> dict[str, Any]:
    return json.loads((resources.files("map_hr") / "profile.schema.json").read_text("utf-8"))


@cache
def canonical_schema(name: str) -> dict[str, Any]:
    """A canonical HR schema (hrsync/schemas/canonical/<name>.json)."""
    ref = resources.files("hrsync") / "schemas" / "canonical" / f"{name}.json"
    return json.loads(ref.read_text("utf-8"))


@dataclass
class Profile:
    """A validated profile: its data plus where each key came from."""

    file: str
    data: dict[str, Any]
    marks: dict[KeyPath, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def source_system(self) -> str:
        return str(self.data["source_system"])

    @property
    def destination(self) -> str:
        return str(self.data["destination"])

    def line(self, key_path: KeyPath) -> int | None:
        for n in range(len(key_path), -1, -1):
            if key_path[:n] in self.marks:
                return self.marks[key_path[:n]]
        return None

    def error(self, key_path: KeyPath, problem: str) -> ProfileError:
        return ProfileError(self.file, key_path, self.line(key_path), problem)

    def stream_specs(self) -> list[tuple[str, int | None, dict[str, Any]]]:
        """(input stream, index in its list or None, spec) for every output stream."""
        out: list[tuple[str, int | None, dict[str, Any]]] = []
        for stream, spec in self.data["streams"].items():
            if isinstance(spec, list):
                out.extend((stream, i, s) for i, s in enumerate(spec))
            else:
                out.append((stream, None, spec))
        return out


def resolve_profile_path(profile: str, profiles_dir: str | Path | None = None) -> Path:
    """A profile setting is a path to a file, or a name looked up in profiles_dir."""
    candidate = Path(profile)
    if candidate.suffix in PROFILE_SUFFIXES and candidate.is_file():
        return candidate
    base = Path(profiles_dir) if profiles_dir else Path(str(resources.files("map_hr"))) / "profiles"
    stem = profile.replace("-", "_")
    for name in (profile, stem):
        for suffix in ("", *PROFILE_SUFFIXES):
            path = base / f"{name}{suffix}"
            if path.is_file() and path.suffix in PROFILE_SUFFIXES:
                return path
    available = sorted(p.stem for p in base.glob("*") if p.suffix in PROFILE_SUFFIXES)
    msg = f"profile {profile!r} not found in {base} (available: {', '.join(available) or 'none'})"
    raise ConfigError(msg)


def load_profile(profile: str | Path, profiles_dir: str | Path | None = None) -> Profile:
    """Find, parse, validate and check a profile."""
    path = resolve_profile_path(str(profile), profiles_dir)
    return parse_profile(path.read_text("utf-8"), str(path))


def parse_profile(text: str, file: str = "<profile>") -> Profile:
    data, marks = load_document(text, file)
    if not isinstance(data, dict):
        raise ProfileError(file, (), 1, "a profile must be a mapping at the top level")
    prof = Profile(file=file, data=data, marks=marks)
    validator = jsonschema.Draft202012Validator(profile_schema())
    error = best_match(validator.iter_errors(data))
    if error is not None:
        key_path: KeyPath = tuple(error.absolute_path)
        raise prof.error(key_path, _describe(error))
    check_profile(prof)
    return prof


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            names = ", ".join(map(repr, extra))
            return f"unknown key(s) {names}; allowed: {', '.join(sorted(allowed))}"
    if error.validator in ("oneOf", "anyOf") and isinstance(error.instance, str):
        # a misspelt name inside a oneOf: list the names that are allowed
        allowed_names = sorted(
            {str(v) for sub in error.context or [] if sub.validator == "enum"
             for v in sub.validator_value if v is not None}
        )  # fmt: skip
        if allowed_names:
            return f"{error.instance!r} is not one of: {', '.join(allowed_names)}"
    if error.validator == "required":
        return str(error.message).replace("is a required property", "is required")
    return str(error.message)


# --- meaning checks ---------------------------------------------------------------------------

VALUE_SOURCES = ("from", "const", "compute")
COMPUTE_ARGS = {
    "display_name": ("first", "last"),
    "email_local_part": ("email",),
    "money": ("amount",),
}
COMPUTE_FROM_OR_ARGS = ("coalesce", "concat", "truthy", "equals")
COMPUTE_FROM = ("current_positions", "secondary_positions")  # a list of rows


def field_paths(spec: Mapping[str, Any]) -> list[str]:
    """Every source path a field spec reads."""
    out: list[str] = []
    src = spec.get("from")
    if isinstance(src, str):
        out.append(src)
    elif isinstance(src, list):
        out.extend(src)
    for value in (spec.get("args") or {}).values():
        out.extend([value] if isinstance(value, str) else value)
    for t in _transforms(spec):
        if isinstance(t, dict) and "phone" in t and (t["phone"] or {}).get("region_from"):
            out.append(t["phone"]["region_from"])
    return out


def _transforms(spec: Mapping[str, Any]) -> list[Any]:
    t = spec.get("transform")
    if t is None:
        return []
    return t if isinstance(t, list) else [t]


def field_pii_class(
    prof: Profile, out_name: str, spec: Mapping[str, Any], canonical: dict[str, Any] | None
) -> str | None:
    """The PII class an output field carries: declared, canonical annotation, or by name."""
    detected: str | None = None
    if canonical is not None and out_name in canonical.get("properties", {}):
        detected = pii.classify(out_name, canonical["properties"][out_name])
    if detected is None:
        detected = pii.classify_name(out_name)
    if not pii.is_sensitive(detected):
        for p in (
            field_paths(spec) if "compute" not in spec or spec["compute"] == "coalesce" else []
        ):
            by_path = pii.classify_name(p.lstrip("$"))
            if pii.is_sensitive(by_path):
                detected = by_path
                break
    return detected


def check_profile(prof: Profile) -> None:
    data = prof.data
    lookups = data.get("lookups") or {}
    for name, lk in lookups.items():
        kp: KeyPath = ("lookups", name)
        if lk["key"] not in lk["keep"]:
            lk["keep"] = [*lk["keep"], lk["key"]]
        if name.startswith("$"):
            raise prof.error(kp, "a lookup name must not start with $")
    population = data.get("population")
    if population is not None:
        if population["stream"] not in data["streams"]:
            raise prof.error(
                ("population", "stream"),
                f"the population's stream {population['stream']!r} is not one of the streams",
            )
        conditions = population["filter"]
        for i, cond in enumerate(conditions if isinstance(conditions, list) else [conditions]):
            pp: KeyPath = ("population", "filter")
            if isinstance(conditions, list):
                pp = (*pp, i)
            if paths.head(cond["field"]).startswith("$"):
                raise prof.error((*pp, "field"), "a population filter reads the person's record")
            _check_path(prof, (*pp, "field"), cond["field"], set())
    outputs: dict[str, KeyPath] = {}
    for stream, idx, spec in prof.stream_specs():
        base: KeyPath = ("streams", stream) if idx is None else ("streams", stream, idx)
        # A profile's population applies to every stream it emits: each one names its person
        if population is not None and stream != population["stream"] and "person" not in spec:
            raise prof.error(
                base,
                f"the profile's population is people of {population['stream']!r}: this stream "
                "must name its person (person: <path of their id>), or people outside the "
                "population would leave through it",
            )
        if population is None and "person" in spec:
            raise prof.error((*base, "person"), "person needs a population at the profile's top")
        if "person" in spec:
            _check_path(prof, (*base, "person"), spec["person"], set())
        out_stream = spec.get("output_stream", stream)
        if out_stream in outputs:
            raise prof.error(
                (*base, "output_stream"),
                f"output stream {out_stream!r} is already produced at "
                f"{format_key_path(outputs[out_stream])}",
            )
        outputs[out_stream] = base
        joins = spec.get("join") or {}
        known_joins: set[str] = set()
        for jname, join in joins.items():
            jp: KeyPath = (*base, "join", jname)
            if join["lookup"] not in lookups:
                raise prof.error(
                    (*jp, "lookup"),
                    f"unknown lookup {join['lookup']!r}; declared: {', '.join(lookups) or 'none'}",
                )
            _check_path(prof, (*jp, "on"), join["on"], known_joins)
            known_joins.add(f"${jname}")
        conditions = spec.get("filter") or []
        for i, cond in enumerate(conditions if isinstance(conditions, list) else [conditions]):
            cp: KeyPath = (
                (*base, "filter", i) if isinstance(conditions, list) else (*base, "filter")
            )
            _check_path(prof, (*cp, "field"), cond["field"], known_joins)
        canonical: dict[str, Any] | None = None
        if "schema" in spec:
            canonical = canonical_schema(spec["schema"].split(":", 1)[1])
        fields = spec["fields"]
        for out_name, fspec in fields.items():
            _check_field(prof, (*base, "fields", out_name), out_name, fspec, known_joins, canonical)
        for key in spec.get("key_properties") or []:
            if key not in fields:
                raise prof.error(
                    (*base, "key_properties"), f"key property {key!r} is not one of the fields"
                )
        if canonical is not None:
            missing = [r for r in canonical.get("required", []) if r not in fields]
            if missing:
                raise prof.error(
                    (*base, "fields"),
                    f"{spec['schema']} requires field(s) {', '.join(missing)}",
                )


def _check_path(prof: Profile, kp: KeyPath, path: str, known_joins: set[str]) -> None:
    try:
        first = paths.head(path)
    except paths.PathError as exc:
        raise prof.error(kp, str(exc)) from None
    if first.startswith("$") and first not in known_joins:
        raise prof.error(
            kp,
            f"path {path!r} reads {first} but the stream joins "
            f"{', '.join(sorted(known_joins)) or 'nothing'} (declare it under join:)",
        )


def _check_field(
    prof: Profile,
    kp: KeyPath,
    out_name: str,
    spec: dict[str, Any],
    known_joins: set[str],
    canonical: dict[str, Any] | None,
) -> None:
    sources = [k for k in VALUE_SOURCES if k in spec]
    compute = spec.get("compute")
    if len(sources) != 1 and not (compute and sources == ["from", "compute"]):
        raise prof.error(
            kp,
            "a field needs exactly one of from / const / compute"
            + (f" (has {', '.join(sources)})" if sources else ""),
        )
    if compute:
        args = spec.get("args") or {}
        for need in COMPUTE_ARGS.get(compute, ()):
            if need not in args:
                raise prof.error((*kp, "args"), f"compute {compute!r} needs args.{need}")
        if compute in COMPUTE_FROM_OR_ARGS and not (args or "from" in spec):
            raise prof.error(kp, f"compute {compute!r} needs from: [paths] or args")
        if compute in COMPUTE_FROM and "from" not in spec:
            raise prof.error(kp, f"compute {compute!r} needs from: the list of positions")
        if compute in COMPUTE_FROM and not spec.get("row_fields"):
            raise prof.error(kp, f"compute {compute!r} needs row_fields")
        if compute not in COMPUTE_FROM and ("row_fields" in spec or "date_field" in spec):
            raise prof.error(kp, "row_fields and date_field are for the positions computes")
        if compute == "object" and (not args or "from" in spec):
            raise prof.error(kp, "compute 'object' needs args (member -> source path) and no from")
        if compute == "format" and "template" not in spec:
            raise prof.error(kp, "compute 'format' needs a template")
        if compute != "format" and "template" in spec:
            raise prof.error((*kp, "template"), "template is only for compute: format")
    for p in field_paths(spec):
        _check_path(prof, kp, p, known_joins)
    for i, t in enumerate(_transforms(spec)):
        name = transform_name(t)
        if isinstance(t, dict) and name in ("date", "datetime"):
            tz = (t[name] or {}).get("timezone")
            if tz:
                try:
                    ZoneInfo(tz)
                except (ZoneInfoNotFoundError, ValueError):
                    raise prof.error((*kp, "transform", i), f"unknown time zone {tz!r}") from None
    if canonical is not None and out_name not in canonical.get("properties", {}):
        raise prof.error(
            kp,
            f"{out_name!r} is not a property of canonical {canonical.get('title', '')} "
            f"(allowed: {', '.join(canonical.get('properties', {}))})",
        )
    # data minimisation: a sensitive field leaves only with an explicit acknowledgement
    cls = field_pii_class(prof, out_name, spec, canonical)
    declared = spec.get("pii", cls) if "pii" in spec else cls
    if declared is not None and declared not in pii.CLASSES:
        raise prof.error((*kp, "pii"), f"unknown PII class {declared!r}; one of {pii.CLASSES}")
    if pii.is_sensitive(cls) and declared != cls and not spec.get("sensitive_ok"):
        raise prof.error(
            (*kp, "pii"),
            f"cannot declassify {cls} field {out_name!r}; "
            "use sensitive_ok: true if it must be sent",
        )
    effective = declared if declared is not None else cls
    if pii.is_sensitive(effective) and not spec.get("sensitive_ok") and not spec.get("hmac"):
        raise prof.error(
            kp,
            f"field {out_name!r} sends {effective} data to {prof.destination}; add "
            f"`sensitive_ok: true` to acknowledge it, or `hmac: true` to pseudonymise it",
        )
