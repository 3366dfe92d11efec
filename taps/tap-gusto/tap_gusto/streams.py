"""Gusto streams: employees, and per employee its jobs (per job its compensations) and
terminations (schemas in schemas/<name>.json).

Gusto's employee object carries the employee's ``jobs`` (each with its ``compensations``) and
``terminations``: the child streams emit those, so a company of 20,000 is read in 200 list
requests rather than 60,000 (Gusto allows 200 requests a minute). Where an employee or job comes
without them (an API version that leaves them out), the child asks its own documented endpoint
(``GET /v1/employees/{uuid}/jobs``, ``/v1/jobs/{uuid}/compensations``,
``/v1/employees/{uuid}/terminations``). Only the employee being emitted, and the employee page
read ahead of it, are held: memory stays flat however large the company.

The embedded children are synced from the employee pass without singer-sdk's per-context log
line, timer and metrics (:meth:`_EmbeddedChild.sync_embedded`: 15,000 child contexts for 5,000
employees), and the employee pages are read one page ahead (the core's
:meth:`hrsync.http.HRRESTStream.request_records`); the Singer messages are the same, in the same
order.

Every stream is full-table: a read-back tap lists everything the payroll holds on every run
(Gusto's employee list has no modified-since filter).
"""

from __future__ import annotations

import copy
import logging
import typing as t
from types import MappingProxyType

from singer_sdk.exceptions import AbortedSyncFailedException, AbortedSyncPausedException
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE

from tap_gusto.client import MAX_PER, GustoStream, TotalPagesPaginator

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context, Record
    from singer_sdk.pagination import BaseAPIPaginator

#: tap attribute -> (key, embedded rows) of the parent record being emitted
_EMBEDDED = "_gusto_embedded"


def _hold(tap: t.Any, kind: str, key: str, rows: t.Any) -> None:
    held: dict[str, tuple[str, t.Any]] = tap.__dict__.setdefault(_EMBEDDED, {})
    held[kind] = (key, rows)


def _take(tap: t.Any, kind: str, key: str) -> list[dict] | None:
    """The rows embedded in the parent record ``key`` (once), or None: ask the endpoint."""
    held: dict[str, tuple[str, t.Any]] = tap.__dict__.setdefault(_EMBEDDED, {})
    owner, rows = held.pop(kind, ("", None))
    if owner != key or not isinstance(rows, list):
        return None
    return [r for r in rows if isinstance(r, dict)]


def _peek(tap: t.Any, kind: str, key: str) -> bool:
    """Whether the parent record ``key`` came with its ``kind`` rows embedded."""
    owner, rows = tap.__dict__.get(_EMBEDDED, {}).get(kind, ("", None))
    return bool(owner == key and isinstance(rows, list))


class _EmbeddingParent(GustoStream):
    """A parent whose records carry their children's rows: each child is synced from them by
    :meth:`_EmbeddedChild.sync_embedded` (what singer-sdk's ``sync`` does for a context, minus
    its per-sync log line, timer and record-count metrics), the full ``sync`` otherwise."""

    def _sync_children(self, child_context: Context | None) -> None:
        if child_context is None:
            super()._sync_children(child_context)  # singer-sdk's warning
            return
        children = self.__dict__.get("_hrsync_children")
        if children is None:  # selection is settled before the sync starts
            children = [
                child
                for child in self.child_streams
                if child.selected or child.has_selected_descendents
            ]
            self.__dict__["_hrsync_children"] = children
        for child in children:
            try:
                if isinstance(child, _EmbeddedChild) and child.has_embedded(child_context):
                    child.sync_embedded(child_context)
                else:
                    child.sync(context=child_context)
            except (AbortedSyncFailedException, AbortedSyncPausedException):
                continue  # as singer-sdk: an interrupted child does not stop the others


class LocationsStream(GustoStream):
    """``GET /v1/companies/{uuid}/locations``: the company's work locations (jobs refer to them
    by ``location_uuid``)."""

    name = "locations"

    @property
    def path(self) -> str:  # type: ignore[override]
        return f"/v1/companies/{self.company_uuid}/locations"


class EmployeesStream(_EmbeddingParent):
    """``GET /v1/companies/{uuid}/employees?include=custom_fields`` (``page``, ``per``;
    ``X-Total-Pages``). ``hris_employee_id`` is the value of the company custom field named by
    ``external_id_field``, where target-payroll-api writes the HRIS employee id."""

    name = "employees"

    @property
    def path(self) -> str:  # type: ignore[override]
        return f"/v1/companies/{self.company_uuid}/employees"

    def get_new_paginator(self) -> BaseAPIPaginator:
        return TotalPagesPaginator()

    @property
    def per(self) -> int:
        return min(MAX_PER, max(1, int(self.config.get("page_size") or MAX_PER)))

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict:
        return {"include": "custom_fields", "page": next_page_token or 1, "per": self.per}

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        uuid = str(row.get("uuid") or "")
        row.pop("ssn", None)  # Gusto never returns it (always ""); has_ssn says if one is on file
        _hold(self._tap, "jobs", uuid, row.pop("jobs", None))
        _hold(self._tap, "terminations", uuid, row.pop("terminations", None))
        field = str(self.config.get("external_id_field") or "HRIS Employee ID")
        row["hris_employee_id"] = next(
            (
                str(cf["value"])
                for cf in row.get("custom_fields") or []
                if isinstance(cf, dict)
                and cf.get("name") == field
                and cf.get("value") not in ("", None)
            ),
            None,
        )
        return super().post_process(row, context)

    def get_child_context(self, record: Record, context: Context | None) -> Context:
        return {"employee_uuid": record["uuid"]}


class _EmbeddedChild(GustoStream):
    """A child stream that emits the rows embedded in its parent record when there are any."""

    state_partitioning_keys: t.ClassVar[list[str]] = []
    embedded_kind: t.ClassVar[str] = ""
    parent_key: t.ClassVar[str] = ""

    def _write_schema_message(self) -> None:
        # singer-sdk writes a child's SCHEMA again for every parent record (its sync() per
        # context): once per run is what the Singer spec asks for, and 20,000 copies cost more
        # than the records themselves
        if self.__dict__.get("_hrsync_schema_written"):
            return
        super()._write_schema_message()
        self.__dict__["_hrsync_schema_written"] = True

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        if not context:
            return
        rows = _take(self._tap, self.embedded_kind, str(context[self.parent_key]))
        if rows is None:
            yield from super().get_records(context)
            return
        yield from rows  # post_process runs on them as on any record

    def has_embedded(self, context: Context) -> bool:
        return _peek(self._tap, self.embedded_kind, str(context[self.parent_key]))

    def sync_embedded(self, context: Context) -> None:
        """singer-sdk 0.54's ``Stream.sync(context)`` with ``_sync_records`` inlined, for one
        parent record's embedded rows: the same messages in the same order (SCHEMA, the
        records with their own children before each, STATE), without the per-context log
        line, sync timer and record counter (three log records per parent record)."""
        context = self.preprocess_context(context)
        self.context = MappingProxyType(context)
        if signpost := self.get_replication_key_signpost(context):
            self._write_replication_key_signpost(context, signpost)
        selected = self.selected
        if selected:
            self._write_schema_message()
        if (
            selected
            and self.replication_method == REPLICATION_FULL_TABLE
            and self.emit_activate_version_messages
        ):
            self._stream_version = self._initialized_at // 1000
            self._write_activate_version_message(self._stream_version)
        try:
            partition = self._get_state_partition_context(context)
            if self.replication_method != REPLICATION_FULL_TABLE:  # full table: a debug line
                self._write_starting_replication_value(context)
            child_context = copy.copy(context)
            index = 0
            for row in self.get_records(context):
                self._check_max_record_limit(current_record_index=index)
                record = self.post_process(row, context)
                if record is None:
                    continue
                self._process_record(
                    record, child_context=child_context, partition_context=partition
                )
                if selected:
                    self._write_record_message(record)
                    self._increment_stream_state(record, context=context)
                    if (index + 1) % self.STATE_MSG_FREQUENCY == 0:
                        self._write_state_message()
                index += 1
            if context == partition:
                self._finalize_state(self.get_context_state(context))
            self._write_state_message()
        except Exception:
            self.log(
                "An unhandled error occurred while syncing '%s'", self.name, level=logging.ERROR
            )
            raise


class JobsStream(_EmbeddedChild, _EmbeddingParent):
    """An employee's jobs (``GET /v1/employees/{employee_uuid}/jobs``): ``title``,
    ``hire_date``, ``location_uuid`` and ``location`` (the company location it names),
    ``primary``, the current ``rate`` / ``payment_unit``."""

    name = "jobs"
    path = "/v1/employees/{employee_uuid}/jobs"
    parent_stream_type = EmployeesStream
    embedded_kind = "jobs"
    parent_key = "employee_uuid"

    def locations(self) -> dict[str, dict[str, t.Any]]:
        found = self._tap.__dict__.get("_gusto_locations")
        if found is None:
            stream = t.cast(GustoStream, self._tap.streams["locations"])
            found = {str(r["uuid"]): r for r in stream.request_records(None) if r.get("uuid")}
            self._tap.__dict__["_gusto_locations"] = found
        return t.cast(dict[str, dict[str, t.Any]], found)

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        if context:
            row.setdefault("employee_uuid", context["employee_uuid"])
        _hold(
            self._tap, "compensations", str(row.get("uuid") or ""), row.pop("compensations", None)
        )
        where = row.get("location_uuid")
        place = self.locations().get(str(where)) if where else None
        row["location"] = (
            {k: place.get(k) for k in ("uuid", "name", "city", "state", "country")}
            if place
            else None
        )
        return super().post_process(row, context)

    def get_child_context(self, record: Record, context: Context | None) -> Context:
        return {"job_uuid": record["uuid"]}


class CompensationsStream(_EmbeddedChild):
    """A job's compensations (``GET /v1/jobs/{job_uuid}/compensations``): ``rate``,
    ``payment_unit``, ``flsa_status``, ``effective_date``."""

    name = "compensations"
    path = "/v1/jobs/{job_uuid}/compensations"
    parent_stream_type = JobsStream
    embedded_kind = "compensations"
    parent_key = "job_uuid"

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        if context:
            row.setdefault("job_uuid", context["job_uuid"])
        return super().post_process(row, context)


class TerminationsStream(_EmbeddedChild):
    """An employee's terminations (``GET /v1/employees/{employee_uuid}/terminations``):
    ``effective_date``, ``run_termination_payroll``, ``active``, ``cancelable``."""

    name = "terminations"
    path = "/v1/employees/{employee_uuid}/terminations"
    parent_stream_type = EmployeesStream
    embedded_kind = "terminations"
    parent_key = "employee_uuid"

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        if context:
            row.setdefault("employee_uuid", context["employee_uuid"])
        return super().post_process(row, context)


#: Emission order: reference data first; singer-sdk emits an employee's jobs (each job's
#: compensations) and terminations just before the employee record itself.
STREAM_TYPES: tuple[type[GustoStream], ...] = (
    LocationsStream,
    EmployeesStream,
    JobsStream,
    CompensationsStream,
    TerminationsStream,
)
