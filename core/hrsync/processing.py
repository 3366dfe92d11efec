"""Why a job processes personal data, and who receives it: read from meltano.yml.

A job's ``annotations: {hrsync: {processing: {...}}}`` in meltano.yml states its purpose, its
GDPR Article 6 legal basis (and Article 9 condition where special categories flow), the data
subjects, retention and security measures; a loader's ``annotations: {hrsync: {...}}`` names
the processor (the company behind the destination), where it processes the data and, outside
the EU/EEA, the transfer mechanism. A job may override any of them per destination
(``processing: {destinations: {<loader>: {...}}}``).

Plugins read this to stamp their audit events (job, legal basis, processor). Meltano exports
no job name to plugins: the job is ``$HRSYNC_INTEGRATION`` when it names a job (``hrsync run``
and the demo set it), else the job with a task from ``$MELTANO_EXTRACTOR_NAME`` to
``$MELTANO_LOADER_NAME``. meltano.yml is found in ``$MELTANO_PROJECT_ROOT`` (Meltano exports it
to plugins), else the working directory. Nothing found: every field is ``None``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Processing", "current", "load_project", "resolve"]

#: job-level keys (a destination may override them)
JOB_KEYS = ("purpose", "legal_basis", "special_category_condition", "retention")
#: destination-level keys (from the loader's annotations, overridable per job)
DESTINATION_KEYS = ("processor", "location", "transfer_mechanism")


@dataclass(frozen=True)
class Processing:
    job: str | None = None
    purpose: str | None = None
    legal_basis: str | None = None
    special_category_condition: str | None = None
    retention: str | None = None
    processor: str | None = None
    location: str | None = None
    transfer_mechanism: str | None = None
    destinations: Mapping[str, Processing] = field(default_factory=dict)

    def for_destination(self, loader: str | None) -> Processing:
        """This job's processing as it applies to one loader (its processor and overrides)."""
        if loader and loader in self.destinations:
            return self.destinations[loader]
        return self

    @property
    def basis(self) -> str | None:
        """Article 6 basis, with the Article 9 condition when there is one."""
        if self.legal_basis and self.special_category_condition:
            return f"{self.legal_basis}; {self.special_category_condition}"
        return self.legal_basis


_projects: dict[tuple[str, float], dict[str, Any]] = {}


def load_project(root: str | Path | None = None) -> dict[str, Any]:
    """meltano.yml under ``root`` (default: ``$MELTANO_PROJECT_ROOT`` or the working dir)."""
    base = Path(root or os.environ.get("MELTANO_PROJECT_ROOT") or ".")
    path = base / "meltano.yml"
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return {}
    key = (str(path.resolve()), mtime)
    if key not in _projects:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}  # noqa: S506
        _projects[key] = data if isinstance(data, dict) else {}
    return _projects[key]


def _note(entry: Mapping[str, Any]) -> dict[str, Any]:
    return dict((entry.get("annotations") or {}).get("hrsync") or {})


def _plugins(project: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for entries in (project.get("plugins") or {}).values():
        for entry in entries or []:
            out[str(entry["name"])] = entry
    return out


def _tasks(job: Mapping[str, Any]) -> list[list[str]]:
    return [(t if isinstance(t, str) else " ".join(t)).split() for t in job.get("tasks") or [] if t]


def resolve(project: Mapping[str, Any], job_name: str) -> Processing:
    """The processing of one job: job-level terms, and per loader its processor."""
    plugins = _plugins(project)
    job = next((j for j in project.get("jobs") or [] if j.get("name") == job_name), None)
    if job is None:
        return Processing()
    terms = dict(_note(job).get("processing") or {})
    overrides = dict(terms.get("destinations") or {})
    job_terms: dict[str, Any] = {k: _text(terms.get(k)) for k in JOB_KEYS}
    base = Processing(job=job_name, **job_terms)
    destinations: dict[str, Processing] = {}
    for task in _tasks(job):
        loader = task[-1]
        note = _note(plugins.get(loader) or {})
        over = dict(overrides.get(loader) or {})
        values: dict[str, Any] = {k: _text(over.get(k, note.get(k))) for k in DESTINATION_KEYS}
        values.update({k: _text(over[k]) for k in JOB_KEYS if k in over})
        destinations[loader] = replace(base, **values)
    only = next(iter(destinations.values())) if len(destinations) == 1 else base
    return replace(only, destinations=destinations)


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def current(integration: str | None = None, root: str | Path | None = None) -> Processing:
    """The processing this plugin runs under (see the module docs); empty when unknown."""
    project = load_project(root)
    if not project:
        return Processing()
    names = [str(j.get("name")) for j in project.get("jobs") or []]
    for candidate in (os.environ.get("HRSYNC_JOB"), integration):
        if candidate in names:
            return resolve(project, str(candidate))
    extractor = os.environ.get("MELTANO_EXTRACTOR_NAME")
    loader = os.environ.get("MELTANO_LOADER_NAME")
    if extractor and loader:
        for job in project.get("jobs") or []:
            if any(t[0] == extractor and t[-1] == loader for t in _tasks(job)):
                return resolve(project, str(job["name"]))
    return Processing()
