"""BATCH messages in targets: every record of a batch file takes the RECORD path.

singer-sdk hands a BATCH message's records straight to ``Sink.process_batch`` (as
``{"records": [...]}``, the whole file in memory), skipping what its RECORD path does and
what hrsync's sinks rely on: schema validation and date-time parsing, ``process_record``
(dead letters, spools, plans, dedupe), batching and drains. A sink that builds its own batch
context then crashes (``KeyError: 'path'``) or, worse, loads unvalidated records.

:class:`BatchAsRecords` (mix it in before ``Target``) reads each file of the manifest line
by line - ``jsonl``, plain or gzip, from any URL the SDK's storage reads (``file://`` for
a tap's local ``batch_config``) - and processes every line exactly as a RECORD message of
that stream. Any other encoding is refused with an error naming the stream and the format.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import typing as t
from collections.abc import Iterator

from singer_sdk.helpers._batch import StorageTarget

__all__ = ["BatchAsRecords", "BatchMessageError", "read_batch_file"]


class BatchMessageError(ValueError):
    """A BATCH message this target cannot read."""


def read_batch_file(url: str, compression: str | None) -> Iterator[dict[str, t.Any]]:
    """The records of one ``jsonl`` batch file, streamed."""
    head, tail = StorageTarget.split_url(url)
    storage = StorageTarget.from_url(head)
    with contextlib.ExitStack() as stack:
        fh: t.IO[bytes] = stack.enter_context(storage.open(tail, mode="rb"))
        if compression == "gzip":
            fh = stack.enter_context(gzip.open(fh))  # type: ignore[arg-type]
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise BatchMessageError(f"{url} line {number}: not JSON ({exc})") from None
            if not isinstance(record, dict):
                raise BatchMessageError(f"{url} line {number}: a record must be an object")
            yield record


class BatchAsRecords:
    """Target mixin: BATCH message files are read and each record processed as a RECORD."""

    def _process_batch_message(self, message_dict: dict) -> None:
        stream = message_dict.get("stream")
        encoding = message_dict.get("encoding")
        manifest = message_dict.get("manifest")
        name = getattr(self, "name", "this target")
        if not isinstance(stream, str) or not isinstance(encoding, dict):
            raise BatchMessageError(f"{name}: a BATCH message needs 'stream' and 'encoding'")
        if not isinstance(manifest, list):
            raise BatchMessageError(f"{name}: BATCH for stream {stream}: 'manifest' is not a list")
        fmt, compression = encoding.get("format"), encoding.get("compression")
        if fmt != "jsonl":
            raise BatchMessageError(
                f"{name}: BATCH for stream {stream}: format {fmt!r} is not supported (jsonl "
                "only: set the tap's batch_config encoding format to jsonl)"
            )
        if compression not in (None, "none", "gzip"):
            raise BatchMessageError(
                f"{name}: BATCH for stream {stream}: compression {compression!r} is not "
                "supported (gzip or none)"
            )
        process = self._process_record_message  # type: ignore[attr-defined]
        for url in manifest:
            for record in read_batch_file(str(url), compression):
                process({"type": "RECORD", "stream": stream, "record": record})
