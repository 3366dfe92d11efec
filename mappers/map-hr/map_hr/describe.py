"""``map-hr --describe PROFILE...``: what a profile reads and writes, as JSON, for other tools.

The operations CLI's integration catalogue (``hrsync docs``) follows fields through chains of
profiles; it asks this command rather than importing map-hr (the operations CLI installs
without any plugin). One JSON object on stdout, keyed by each PROFILE argument as given::

    {"bamboohr_to_canonical": {
        "name": "bamboohr_to_canonical", "source_system": "BambooHR", "destination": "...",
        "system_of_record": {...}, "lookups": {...},
        "streams": [{"input_stream": "employees", "output_stream": "workers",
                     "join": {...}, "schema": "canonical:worker",
                     "fields": {"first_name": {"spec": {...}, "reads": ["firstName"],
                                               "pii": "name"}}}],
        "heads": {"firstName": "firstName", "$job.name": "$job", "name": "name"}}}

``reads`` lists every source path of a field; ``pii`` is the PII class map-hr gives the output
field; ``heads`` maps each path read (and what follows a ``$join`` step) to its first key.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from hrsync.errors import ConfigError

from . import paths
from .profile import Profile, canonical_schema, field_paths, field_pii_class, load_profile

__all__ = ["describe", "main"]


def describe(prof: Profile) -> dict[str, Any]:
    """The JSON description of one loaded profile."""
    heads: dict[str, str] = {}

    def note(path: str) -> None:
        heads[path] = paths.head(path)
        if path.startswith("$") and "." in path:
            rest = path.split(".", 1)[1]
            heads[rest] = paths.head(rest)

    streams = []
    for stream, _, spec in prof.stream_specs():
        canonical = None
        if "schema" in spec:
            canonical = canonical_schema(str(spec["schema"]).split(":", 1)[1])
        fields = {}
        for out_name, fspec in spec["fields"].items():
            reads = field_paths(fspec)
            for path in reads:
                note(path)
            fields[out_name] = {
                "spec": fspec,
                "reads": reads,
                "pii": field_pii_class(prof, out_name, fspec, canonical),
            }
        streams.append(
            {
                "input_stream": stream,
                "output_stream": spec.get("output_stream", stream),
                "join": spec.get("join") or {},
                "schema": spec.get("schema"),
                "fields": fields,
            }
        )
    data = prof.data
    return {
        "name": prof.name,
        "source_system": data.get("source_system"),
        "destination": data.get("destination"),
        "system_of_record": data.get("system_of_record") or {},
        "lookups": data.get("lookups") or {},
        "streams": streams,
        "heads": heads,
    }


def main(profiles: list[str]) -> int:
    """Print the description of every profile (a name shipped with map-hr, or a file path)."""
    if not profiles:
        print("usage: map-hr --describe PROFILE [PROFILE...]", file=sys.stderr)
        return 2
    try:
        out = {name: describe(load_profile(name)) for name in profiles}
    except (ConfigError, paths.PathError) as exc:
        print(f"map-hr --describe: {exc}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
    return 0
