"""target-warehouse: every stream into a table of an embedded DuckDB database.

Tables follow the streams' JSON schemas (new properties add columns), records are upserted on
the stream's key properties (streams without keys are appended), each row carries
``_loaded_at``, and a record that cannot be loaded goes to the dead-letter store with the field
and the reason while the rest of the run goes on. See ``warehouse.py`` for how.
"""

from __future__ import annotations

from functools import cached_property

from singer_sdk import typing as th
from singer_sdk.target_base import Target

from hrsync.audit import AuditLog
from hrsync.batch import BatchAsRecords
from hrsync.cli import plugin_main
from hrsync.deadletter import DeadLetterStore, TargetDeadLetters
from hrsync.direct import DirectRecords
from hrsync.singer_input import SingerObjectReader
from target_warehouse.sinks import WarehouseSink
from target_warehouse.warehouse import Warehouse

DEFAULT_DATABASE = ".hrsync/warehouse.duckdb"


# records of unmapped streams go straight to their sink (hrsync.direct: the bulk path);
# BATCH files take the RECORD path
class TargetWarehouse(DirectRecords, BatchAsRecords, Target):
    name = "target-warehouse"
    package_name = "hrsync-target-warehouse"  # the distribution, for --about's version
    message_reader_class = SingerObjectReader  # a non-object line fails naming it
    default_sink_class = WarehouseSink
    config_jsonschema = th.PropertiesList(
        th.Property("database", th.StringType, default=DEFAULT_DATABASE,
                    description="DuckDB database file (created if missing; one writer at a time)"),
        th.Property("schema", th.StringType, default="main",
                    description="DuckDB schema the tables are created in"),
        th.Property("table_prefix", th.StringType, default="",
                    description="Prefix for every table name (table = prefix + stream name)"),
        th.Property("audit_log_path", th.StringType,
                    description="Audit log (JSON lines); default $HRSYNC_AUDIT_LOG"),
        th.Property("dead_letter_path", th.StringType,
                    description="Dead-letter store (SQLite); default $HRSYNC_DLQ_PATH"),
        th.Property("replace_by_parent",
                    th.ObjectType(additional_properties=th.ArrayType(th.StringType)),
                    description="stream -> columns naming the record that owns its rows, e.g. "
                    "{survey_answers: [response_id]}: when a run carries rows of a parent, the "
                    "parent's rows from earlier runs are replaced as a whole (a removed answer "
                    "does not stay); not applied when replaying dead letters"),
    ).to_dict()  # fmt: skip

    @property
    def max_parallelism(self) -> int:
        """Sinks drain one at a time: they share one DuckDB connection (DuckDB itself loads a
        batch on every core)."""
        return 1

    @max_parallelism.setter
    def max_parallelism(self, _value: int) -> None:
        pass  # fixed at 1

    @cached_property
    def warehouse(self) -> Warehouse:
        return Warehouse(
            self.config.get("database") or DEFAULT_DATABASE, self.config.get("schema") or "main"
        )

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.config.get("audit_log_path"))

    @cached_property
    def dead_letters(self) -> TargetDeadLetters:
        return TargetDeadLetters(self.name, DeadLetterStore(self.config.get("dead_letter_path")))

    def process_endofpipe(self) -> None:
        try:
            super().process_endofpipe()
            if "dead_letters" in self.__dict__:
                self.dead_letters.flush()
        finally:
            if "warehouse" in self.__dict__:
                self.warehouse.close()


#: the target-warehouse console script: closed pipes and missing files end quietly (hrsync.cli)
main = plugin_main(TargetWarehouse, "target-warehouse")


if __name__ == "__main__":
    main()
