"""Lever streams: one small declaration per endpoint (schemas in schemas/<name>.json)."""

from __future__ import annotations

import typing as t

from tap_lever.client import LeverStream

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context


class StagesStream(LeverStream):
    """``GET /v1/stages``: pipeline stages (``id``, ``text``)."""

    name = "stages"
    path = "/stages"


class UsersStream(LeverStream):
    """``GET /v1/users``: recruiters, hiring managers and other Lever users."""

    name = "users"
    path = "/users"


class ArchiveReasonsStream(LeverStream):
    """``GET /v1/archive_reasons``: ``type`` hired or non-hired (what ``archived.reason`` means)."""

    name = "archive_reasons"
    path = "/archive_reasons"


class PostingsStream(LeverStream):
    """``GET /v1/postings``: job postings with ``categories`` (team, department, location,
    commitment). Lever documents no updated-at filter here: the window is applied client-side."""

    name = "postings"
    path = "/postings"
    replication_key = "updatedAt"


class OpportunitiesStream(LeverStream):
    """``GET /v1/opportunities?updated_at_start=&updated_at_end=``: a person (``contact``) in
    a pipeline; ``archived.reason`` is an archive reason id (one of type *hired* for hires).

    Remembers the ids it emitted: the offers stream reads the offers of exactly those.
    """

    name = "opportunities"
    path = "/opportunities"
    replication_key = "updatedAt"
    server_side_window = True

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        self._tap._lever_opportunity_ids = []  # type: ignore[attr-defined]
        yield from super().get_records(context)

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        row_out = super().post_process(row, context)
        if row_out is not None:
            emitted_opportunity_ids(self._tap).append(str(row_out["id"]))
        return row_out


class OffersStream(LeverStream):
    """``GET /v1/opportunities/{id}/offers`` for every opportunity emitted in this run (so only
    the changed ones on an incremental run); each offer gets the ``opportunity_id`` it belongs to.

    Synced after opportunities (not as a singer-sdk child, which would emit the offers *before*
    their opportunity and break joins downstream). One partition per opportunity, one state for
    all of them (``state_partitioning_keys = []``): the state stays small however many there are.
    """

    name = "offers"
    path = "/opportunities/{opportunity_id}/offers"
    state_partitioning_keys: t.ClassVar[list[str]] = []

    @property
    def partitions(self) -> list[dict] | None:
        ids = getattr(self._tap, "_lever_opportunity_ids", None)
        if ids is None:
            # opportunities were not synced in this run: list the ones in its window ourselves
            opportunities = t.cast(LeverStream, self._tap.streams["opportunities"])
            ids = [str(r["id"]) for r in opportunities.request_records(None)]
            self.logger.warning(
                "offers without the opportunities stream: read %d opportunity ids to find "
                "their offers",
                len(ids),
            )
        return [{"opportunity_id": ident} for ident in ids]

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        if not context or "opportunity_id" not in context:
            return  # no opportunity changed in this run: no offers to read
        yield from super().get_records(context)

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        if context:
            row["opportunity_id"] = context["opportunity_id"]
        return super().post_process(row, context)


def emitted_opportunity_ids(tap: t.Any) -> list[str]:
    ids: list[str] | None = getattr(tap, "_lever_opportunity_ids", None)
    if ids is None:
        ids = []
        tap._lever_opportunity_ids = ids
    return ids


#: Emission order: reference data first, offers last (after the opportunities they belong to).
STREAM_TYPES: tuple[type[LeverStream], ...] = (
    StagesStream,
    ArchiveReasonsStream,
    UsersStream,
    PostingsStream,
    OpportunitiesStream,
    OffersStream,
)
