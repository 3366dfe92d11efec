"""Source paths: ``a.b``, ``list[0].c``, ``email_addresses[type=work].value``, ``$job.name``.

A path compiles once into a getter ``record -> value`` that returns None for anything missing
(absent key, null, short list, wrong type) instead of raising: a missing value is the field
spec's business (``default``, ``required``). A leading ``$name`` reads the joined record that
the stream's ``join: {name: ...}`` put on the record under the key ``$name``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Getter = Callable[[dict[str, Any]], Any]

_SEGMENT = re.compile(r"^(?P<key>[^.\[\]]+)(?P<subs>(\[[^\]]+\])*)$")
_SUB = re.compile(r"\[([^\]]+)\]")


class PathError(ValueError):
    """A path that does not parse."""


@dataclass(frozen=True)
class Step:
    kind: str  # "key" | "index" | "select"
    key: str = ""
    index: int = 0
    value: str = ""


def _split(path: str) -> list[str]:
    """Split on dots outside brackets."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in path:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "." and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse(path: str) -> list[Step]:
    steps: list[Step] = []
    for segment in _split(path):
        m = _SEGMENT.match(segment)
        if not m:
            raise PathError(f"bad path {path!r}: cannot read segment {segment!r}")
        steps.append(Step("key", key=m.group("key")))
        for sub in _SUB.findall(m.group("subs") or ""):
            if "=" in sub:
                k, _, v = sub.partition("=")
                steps.append(Step("select", key=k.strip(), value=v.strip()))
            else:
                try:
                    steps.append(Step("index", index=int(sub)))
                except ValueError:
                    raise PathError(
                        f"bad path {path!r}: [{sub}] is neither an index nor key=value"
                    ) from None
    return steps


def head(path: str) -> str:
    """The first key of a path (the top-level field or ``$join`` it reads)."""
    return parse(path)[0].key


def is_simple(path: str) -> bool:
    """A single top-level key."""
    steps = parse(path)
    return len(steps) == 1 and steps[0].kind == "key"


def _step_fn(step: Step) -> Callable[[Any], Any]:
    if step.kind == "key":
        key = step.key

        def by_key(cur: Any) -> Any:
            return cur.get(key) if isinstance(cur, dict) else None

        return by_key
    if step.kind == "index":
        idx = step.index

        def by_index(cur: Any) -> Any:
            if isinstance(cur, list) and -len(cur) <= idx < len(cur):
                return cur[idx]
            return None

        return by_index
    key, want = step.key, step.value

    def select(cur: Any) -> Any:
        if not isinstance(cur, list):
            return None
        for item in cur:
            if isinstance(item, dict):
                got = item.get(key)
                if got is not None and str(got) == want:
                    return item
        return None

    return select


def compile_path(path: str) -> Getter:
    """A getter for the path (None when anything along it is missing)."""
    steps = parse(path)
    first = steps[0].key
    if len(steps) == 1:

        def top(rec: dict[str, Any]) -> Any:
            return rec.get(first)

        return top
    if len(steps) == 2 and steps[1].kind == "key":
        second = steps[1].key

        def two(rec: dict[str, Any]) -> Any:
            cur = rec.get(first)
            return cur.get(second) if isinstance(cur, dict) else None

        return two
    fns = [_step_fn(s) for s in steps[1:]]

    def walk(rec: dict[str, Any]) -> Any:
        cur = rec.get(first)
        for fn in fns:
            if cur is None:
                return None
            cur = fn(cur)
        return cur

    return walk


def schema_at(schema: dict[str, Any] | None, path: str) -> dict[str, Any] | None:
    """The JSON schema of the value a path reads, if the input schema says."""
    if not schema:
        return None
    cur: Any = schema
    for step in parse(path):
        if not isinstance(cur, dict):
            return None
        if step.kind == "key":
            props = cur.get("properties")
            if not isinstance(props, dict) or step.key not in props:
                return None
            cur = props[step.key]
        else:
            items = cur.get("items")
            if not isinstance(items, dict):
                return None
            cur = items
    return cur if isinstance(cur, dict) else None
