"""target-warehouse: every stream into a table of an embedded DuckDB database.

Tables follow the streams' JSON schemas (new properties add columns), records are upserted on
the stream's key properties (streams without keys are appended), each row carries
``_loaded_at``, and a record that cannot be loaded goes to the dead-letter store with the field
and the reason while the rest of the run goes on. See ``warehouse.py`` for how.
"""

from __future__ import annotations

import copy
from functools import cached_property

from singer_sdk import typing as th
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.target_base import Target

from hrsync.audit import AuditLog
from hrsync.batch import BatchAsRecords
from hrsync.cli import plugin_main
from hrsync.deadletter import DeadLetterStore, TargetDeadLetters
from hrsync.singer_input import SingerObjectReader
from target_warehouse.sinks import WarehouseSink
from target_warehouse.warehouse import Warehouse

DEFAULT_DATABASE = ".hrsync/warehouse.duckdb"


class TargetWarehouse(BatchAsRecords, Target):  # BATCH files take the RECORD path
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

    def _process_record_message(self, message_dict: dict) -> None:
        """The bulk path: a record of a stream that no stream map changes goes straight to its
        sink's :meth:`WarehouseSink.take` (the same steps as singer-sdk's path, in the same
        order, without looking up the map, the sink and the metadata settings per record).
        Anything else takes singer-sdk's own path."""
        record = message_dict.get("record")
        sink = self._bulk_sinks.get(message_dict.get("stream"))  # type: ignore[arg-type]
        if sink is None or type(record) is not dict:
            super()._process_record_message(message_dict)
            return
        sink.take(copy.copy(record))
        if sink.is_full:
            self.logger.info(
                "Target sink for '%s' is full. Current size is '%s'. Draining...",
                sink.stream_name,
                sink.current_size,
            )
            self.drain_one(sink)
        self._handle_max_record_age()

    @cached_property
    def _bulk_sinks(self) -> dict[str, WarehouseSink]:
        return {}

    def _process_schema_message(self, message_dict: dict) -> None:
        super()._process_schema_message(message_dict)
        stream = message_dict["stream"]
        self._bulk_sinks.pop(stream, None)
        maps = self.mapper.stream_maps.get(stream) or []
        sink = self._sinks_active.get(stream)
        if (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == stream
            and not maps[0].flattening_enabled
            and isinstance(sink, WarehouseSink)
            and not sink.include_sdc_metadata_properties
        ):
            self._bulk_sinks[stream] = sink

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
