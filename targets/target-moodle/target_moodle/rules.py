"""Compliance rules kept as data: which courses a person must take, and by when.

The rules file (YAML or JSON) is validated against ``schemas/rules.schema.json``; a broken file
is a :class:`hrsync.errors.ConfigError` naming the file, the rule and the problem. Its
fingerprint (a hash of the parsed rules, so comments and formatting do not count) tells the
target when the rules changed and everyone must be re-evaluated.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import typing as t
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jsonschema
import yaml

from hrsync.errors import ConfigError

DEFAULT_RULES = Path(__file__).with_name("compliance_rules.yml")
SCHEMA = Path(__file__).parent / "schemas" / "rules.schema.json"
TEXT_KEYS = ("department", "role", "location", "country", "state")


@dataclass(frozen=True)
class Facts:
    """What the rules look at, for one person."""

    department: str | None
    role: str | None
    location: str | None
    country: str | None
    state: str | None
    is_manager: bool

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "department": self.department,
            "role": self.role,
            "location": self.location,
            "country": self.country,
            "state": self.state,
            "is_manager": self.is_manager,
        }


@dataclass(frozen=True)
class Requirement:
    """One course a person must take: the earliest due among the rules that require it."""

    course_id: int
    due_days: int
    rules: tuple[str, ...]

    def due_date(self, hire_date: dt.date | None, assigned_on: dt.date) -> dt.date:
        """Due ``due_days`` after the hire date, or after ``assigned_on`` when that is later
        (a rule that starts applying to someone already employed gives them the full period)."""
        start = max(hire_date, assigned_on) if hire_date else assigned_on
        return start + dt.timedelta(days=self.due_days)


def _match_text(pattern: str, value: str | None) -> bool:
    if value is None:
        return False
    return fnmatch.fnmatchcase(value.strip().casefold(), pattern.strip().casefold())


def _holds(conditions: dict[str, t.Any], facts: Facts) -> bool:
    for key, expected in conditions.items():
        if key == "is_manager":
            if bool(expected) != facts.is_manager:
                return False
            continue
        value = getattr(facts, key)
        options = expected if isinstance(expected, list) else [expected]
        if not any(_match_text(str(option), value) for option in options):
            return False
    return True


@dataclass(frozen=True)
class Rule:
    name: str
    courses: tuple[int, ...]
    due_days: int
    when: dict[str, t.Any]
    unless: dict[str, t.Any]

    def applies(self, facts: Facts) -> bool:
        return _holds(self.when, facts) and not (self.unless and _holds(self.unless, facts))


@dataclass(frozen=True)
class Rules:
    path: str
    rules: tuple[Rule, ...]
    fingerprint: str

    @property
    def course_ids(self) -> list[int]:
        return sorted({c for rule in self.rules for c in rule.courses})

    def requirements(self, facts: Facts) -> dict[int, Requirement]:
        """Course id -> requirement; a course two rules require is due at the earlier date."""
        found: dict[int, Requirement] = {}
        for rule in self.rules:
            if not rule.applies(facts):
                continue
            for course in rule.courses:
                have = found.get(course)
                if have is None:
                    found[course] = Requirement(course, rule.due_days, (rule.name,))
                else:
                    found[course] = Requirement(
                        course, min(have.due_days, rule.due_days), (*have.rules, rule.name)
                    )
        return found

    def requirements_any(self, facets: t.Sequence[Facts]) -> dict[int, Requirement]:
        """The courses of every position a person holds (two jobs: both roles' courses); a
        course that several require is due at the earliest date."""
        found: dict[int, Requirement] = {}
        for facts in facets:
            for course, need in self.requirements(facts).items():
                have = found.get(course)
                if have is None:
                    found[course] = need
                else:
                    rules = (*have.rules, *(r for r in need.rules if r not in have.rules))
                    found[course] = Requirement(course, min(have.due_days, need.due_days), rules)
        return found

    def rule_for(self, course_id: int) -> str:
        return next((r.name for r in self.rules if course_id in r.courses), "?")


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def parse_rules(data: t.Any, *, source: str) -> Rules:
    """Validate parsed rules data and compile it."""
    if not isinstance(data, dict):
        raise ConfigError.at("the rules file must hold a mapping (version, rules)", file=source)
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        where = _where(data, list(error.absolute_path))
        raise ConfigError.at(f"{error.message} (see {SCHEMA.name})", file=source, key=where)
    default_due = int((data.get("defaults") or {}).get("due_days", 30))
    names: set[str] = set()
    rules = []
    for i, item in enumerate(data["rules"]):
        if item["name"] in names:
            raise ConfigError.at(
                f"rule name {item['name']!r} is used twice", file=source, key=f"rules[{i}].name"
            )
        names.add(item["name"])
        rules.append(
            Rule(
                name=item["name"],
                courses=tuple(item["courses"]),
                due_days=int(item.get("due_days", default_due)),
                when=dict(item.get("when") or {}),
                unless=dict(item.get("unless") or {}),
            )
        )
    canonical = json.dumps(
        [
            [r.name, list(r.courses), r.due_days, sorted(r.when.items()), sorted(r.unless.items())]
            for r in rules
        ],
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    fingerprint = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    return Rules(path=source, rules=tuple(rules), fingerprint=fingerprint)


def _where(data: t.Any, path: list[t.Any]) -> str:
    """``rules[3] (california-supervisors).when.state`` for an error's path."""
    out, node = "", data
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and node.get("name"):
                out += f" ({node['name']})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def load_rules(path: str | Path | None) -> Rules:
    """Load a rules file (YAML or JSON); None: the example shipped with the package."""
    target = Path(path) if path else DEFAULT_RULES
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError.at(f"cannot read the rules file: {exc.strerror}", file=target) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError.at(f"not valid YAML/JSON: {exc}", file=target, line=line) from exc
    return parse_rules(data, source=str(target))
