"""target-scim: provision HRIS employees into any SCIM 2.0 service provider."""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

from singer_sdk import typing as th
from singer_sdk.target_base import Target

from hrsync.audit import AuditLog
from hrsync.batch import BatchAsRecords
from hrsync.cli import plugin_main
from hrsync.deadletter import TargetDeadLetters, replaying
from hrsync.http import HTTP_SETTINGS
from hrsync.identity import settle_failures
from hrsync.singer_input import SingerObjectReader
from target_scim.auth import build_auth
from target_scim.client import SCIMClient, SCIMError
from target_scim.provision import (
    Failure,
    Provisioner,
    ProvisioningIncomplete,
    Settings,
    Summary,
    TargetSCIMError,
)
from target_scim.sinks import SCIMUserSink
from target_scim.users import USER_NAME_SOURCES


class TargetSCIM(BatchAsRecords, Target):  # BATCH files take the RECORD path
    """Creates, updates, deactivates and reactivates SCIM users from identity records."""

    name = "target-scim"
    package_name = "hrsync-target-scim"  # the distribution, for --about's version
    message_reader_class = SingerObjectReader  # a non-object line fails naming it
    default_sink_class = SCIMUserSink

    config_jsonschema = th.PropertiesList(
        th.Property(
            "base_url",
            th.StringType,
            required=True,
            description="SCIM base URL, e.g. https://example.okta.com/scim/v2 (HTTPS; "
            "plain http only on loopback)",
        ),
        th.Property(
            "bearer_token",
            th.StringType,
            secret=True,
            description="Static bearer token of the SCIM API (instead of the oauth_* settings)",
        ),
        th.Property(
            "oauth_client_id",
            th.StringType,
            description="OAuth 2.0 client-credentials client id (instead of bearer_token)",
        ),
        th.Property(
            "oauth_client_secret",
            th.StringType,
            secret=True,
            description="OAuth 2.0 client secret of oauth_client_id",
        ),
        th.Property(
            "oauth_token_url",
            th.StringType,
            description="OAuth 2.0 token endpoint the client credentials are sent to",
        ),
        th.Property(
            "oauth_scope",
            th.StringType,
            description="Space-separated scopes to request with the token (optional)",
        ),
        th.Property(
            "user_name_attribute",
            th.StringType,
            default="user_name",
            allowed_values=list(USER_NAME_SOURCES),
            description="Which record field becomes the SCIM userName",
        ),
        th.Property(
            "organization",
            th.StringType,
            description="Static enterprise 'organization' for every user (unmanaged if unset)",
        ),
        th.Property(
            "dry_run",
            th.BooleanType,
            default=False,
            description="Print the plan (creates, updates, deactivations, reactivations) "
            "and write nothing",
        ),
        th.Property(
            "max_deactivation_share",
            th.NumberType,
            default=0.10,
            description="Refuse a run that would deactivate more than this share of the "
            "active accounts (nothing is written)",
        ),
        th.Property(
            "mass_deactivation_floor",
            th.IntegerType,
            default=1,
            description="The guard never fires for this many deactivations or fewer",
        ),
        th.Property(
            "allow_mass_deactivation",
            th.BooleanType,
            default=False,
            description="Explicit override of the mass-deprovisioning guard",
        ),
        th.Property(
            "deactivate_missing_users",
            th.BooleanType,
            default=False,
            description="Full-feed mode: deactivate accounts that carry an externalId but are "
            "absent from this run's input (only for feeds that list every employee)",
        ),
        th.Property(
            "max_concurrency",
            th.IntegerType,
            default=4,
            description="Parallel requests (lookups, writes, Bulk requests)",
        ),
        th.Property(
            "use_bulk",
            th.BooleanType,
            default=True,
            description="Use /Bulk when the server announces it",
        ),
        th.Property(
            "bulk_max_operations",
            th.IntegerType,
            default=1000,
            description="Cap on operations per Bulk request (the server's maxOperations also "
            "applies)",
        ),
        th.Property(
            "timezone",
            th.StringType,
            default="UTC",
            description="IANA time zone deciding what 'today' is for termination dates",
        ),
        th.Property(
            "request_timeout",
            th.NumberType,
            default=30,
            description="Seconds to wait for the SCIM server to answer one request",
        ),
        th.Property(
            "oauth_client_auth",
            th.StringType,
            default="basic",
            allowed_values=["basic", "body"],
            description="How the OAuth client id/secret are sent: HTTP Basic or form body",
        ),
        *HTTP_SETTINGS,  # the core's retries, backoff, rate limit, user agent
    ).to_dict()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.config
        concurrency = max(1, int(cfg.get("max_concurrency") or 4))
        self.client = SCIMClient(
            cfg["base_url"],
            build_auth(cfg),
            timeout=float(cfg.get("request_timeout") or 30),
            max_retries=int(cfg.get("max_retries") or 8),
            retry_max_seconds=float(cfg.get("retry_max_seconds") or 300),
            backoff_base_seconds=float(cfg.get("backoff_base_seconds") or 1.0),
            backoff_max_seconds=float(cfg.get("backoff_max_seconds") or 60),
            requests_per_second=cfg.get("requests_per_second"),
            user_agent=str(cfg.get("user_agent") or "hrsync target-scim"),
            pool_size=concurrency,
            logger=self.logger,
        )
        self.provisioner = Provisioner(
            self.client,
            Settings(
                dry_run=bool(cfg.get("dry_run")),
                max_deactivation_share=float(cfg.get("max_deactivation_share", 0.10)),
                allow_mass_deactivation=bool(cfg.get("allow_mass_deactivation")),
                mass_deactivation_floor=int(cfg.get("mass_deactivation_floor", 1)),
                # a dead-letter replay carries a few users, not the feed: never "missing"
                deactivate_missing_users=bool(cfg.get("deactivate_missing_users"))
                and not replaying(),
                max_concurrency=concurrency,
                use_bulk=bool(cfg.get("use_bulk", True)),
                bulk_max_operations=int(cfg.get("bulk_max_operations") or 1000),
            ),
            audit=self._audit,
            logger=self.logger,
        )
        self.audit_log = AuditLog()
        # users the server refused (after retries) -> dead letters; delivered ones resolve
        self.letters = TargetDeadLetters(self.name)
        self.summary: Summary | None = None

    def _audit(
        self, stream: str, record_key: str, fields: list[str], outcome: str, detail: str | None
    ) -> None:
        """One audit line per change: field names only, never values."""
        self.audit_log.record(
            stream=stream,
            record_key=record_key,
            fields=fields,
            destination=self.client.base_url,
            outcome=outcome,
            detail=detail,
            employee_id=record_key,  # the subject reference, never the id, is written
        )

    def record_refused(
        self, stream: str, record_key: str, record: Any, field: str, error: str
    ) -> None:
        """A record the reader refused (hrsync.singer_input, already a dead letter): that
        employee is in the feed, so full-feed mode must not deactivate them as absent."""
        self.provisioner.held.add(record_key)

    def _handle_max_record_age(self) -> None:
        """No time-based drains: the run is planned as a whole at the end of the input, and
        state must not be emitted before the users it covers are written."""

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: the SDK would drain and emit state; here that would mark users as
        done that were never written. Stop without state; a re-run converges."""
        self.logger.warning(
            "target-scim interrupted by signal %d: no state emitted (a re-run converges)", signum
        )
        sys.exit(128 + signum)

    def process_endofpipe(self) -> None:
        """Plan the whole batch, guard, write, then emit state (and fail if users failed)."""
        try:
            self._plan_write_settle()
        finally:
            self.provisioner.close()  # the spill file of the batch and the plan

    def _plan_write_settle(self) -> None:
        self.summary = self.provisioner.run()
        self.logger.info(
            "target-scim done: %s",
            ", ".join(f"{v} {k}" for k, v in sorted(self.summary.outcomes.items())) or "no writes",
        )
        if self.provisioner.settings.dry_run:
            # a dry run must not move the bookmark: the real run has to see these records
            self._latest_state = None
            super().process_endofpipe()
            return
        lost = self._settle(self.summary.failures)
        super().process_endofpipe()
        if lost:
            raise ProvisioningIncomplete(
                f"{len(lost)} account(s) absent from the feed could not be deactivated "
                f"({', '.join(sorted(f.employee_id for f in lost)[:20])}); the next full-feed run "
                "tries again"
            )

    def _settle(self, failures: list[Failure]) -> list[Failure]:
        """Dead letters for the failures, resolved letters for everyone else of the batch."""
        return settle_failures(
            self.letters,
            failures,
            self.provisioner.batch(),
            _scim_error_class,
            self.logger,
            "target-scim",
        )

    @classmethod
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        """Run-level stops end with a clear message and exit status 1, not a traceback."""
        try:
            super().invoke(*args, **kwargs)
        except (TargetSCIMError, SCIMError) as error:
            cls.logger.error("target-scim stopped: %s", error)
            print(f"target-scim: {error}", file=sys.stderr)
            sys.exit(1)


def _scim_error_class(failure: Failure) -> str:
    kind = "_".join(str(x) for x in (failure.status, failure.scim_type) if x)
    return f"http_{kind}" if failure.status else "invalid_record"


#: the target-scim console script: closed pipes and missing files end quietly (hrsync.cli)
main = plugin_main(TargetSCIM, "target-scim")


if __name__ == "__main__":
    main()
