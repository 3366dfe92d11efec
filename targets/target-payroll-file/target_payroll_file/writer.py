"""Builds the payroll file on disk, one line at a time (memory stays flat for any size).

Detail lines go to a private temporary directory (mode 0700) as they come; the header and
trailer (fixed width) need the record count and hash totals, so the final file is assembled
at the end: header + detail + trailer. Every line also notes its item key (stream + record
key) and the sha256 of its values, so lines already sent are skipped and, once the file is
delivered, recorded as sent. Lines wait in a small batch (``BATCH``) so the ledger is asked
once per batch, not once per line; they keep their order.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import orjson

from hrsync.transfer import SentItems
from target_payroll_file.layout import Column, Layout

__all__ = ["PayrollFileBuilder"]


#: a line's sha256 is taken over json.dumps(values, ensure_ascii=False) (the ledger keeps it)
_LINE_JSON = json.JSONEncoder(ensure_ascii=False)
_quote = json.encoder.encode_basestring  # what that encoder writes for each string


#: what that encoder escapes in a string (ensure_ascii=False): the quote, the backslash and
#: the control characters; a line without any is written as it is between quotes
_ESCAPED = re.compile(r'[\x00-\x1f"\\]').search
_sha256 = hashlib.sha256


def _line_json(values: list[str]) -> str:
    """json.dumps(values, ensure_ascii=False), byte for byte, without an encoder per line."""
    try:
        if values and _ESCAPED("".join(values)) is None:  # nothing to escape: one join
            return '["' + '", "'.join(values) + '"]'
        return "[" + ", ".join(map(_quote, values)) + "]"
    except TypeError:  # not all strings: the encoder itself
        return _LINE_JSON.encode(values)


class PayrollFileBuilder:
    BATCH = 500  # lines per ledger look-up

    def __init__(self, layout: Layout, *, work_dir: str | Path | None = None) -> None:
        self.layout = layout
        self._tmp = Path(tempfile.mkdtemp(prefix="hrsync-payroll-", dir=work_dir))  # 0700
        self.detail_path = self._tmp / "detail"
        self.items_path = self._tmp / "items.jsonl"
        self._detail: IO[str] = self.detail_path.open("w", encoding=layout.encoding, newline="")
        self._items: IO[bytes] = self.items_path.open("wb")  # private: orjson lines
        self._csv = csv.writer(
            self._detail,
            delimiter=layout.delimiter,
            lineterminator=layout.line_terminator,
            quoting=csv.QUOTE_ALL if layout.quote_all else csv.QUOTE_MINIMAL,
        )
        self.rows = 0
        self.already_sent = 0
        self.digest = hashlib.sha256()  # over the detail values: the file's content key
        self.sums: dict[str, Decimal] = {}
        # hash totals only for the columns a header or trailer asks for (sum:<COLUMN>)
        sources = [c.source or "" for c in (*layout.header, *layout.trailer)]
        totals = {source[4:] for source in sources if source.startswith("sum:")}
        self._numeric = [
            (i, c)
            for i, c in enumerate(layout.columns)
            if c.type in {"integer", "decimal"} and c.name in totals
        ]
        self._pending: list[tuple[str, str, list[str]]] = []

    def add(
        self, stream: str, record_key: str, values: list[str], sent: SentItems | None
    ) -> list[tuple[str, str]]:
        """Queue one line; every ``BATCH`` lines, those not sent before are written. Returns
        (stream, record_key) of the lines found already sent (not written), if any."""
        pending = self._pending
        pending.append((stream, record_key, values))
        if len(pending) >= self.BATCH:
            return self.flush(sent)
        return []

    def flush(self, sent: SentItems | None) -> list[tuple[str, str]]:
        """Write the queued lines that were not sent before, in order; returns
        (stream, record_key) of those that were (and are skipped)."""
        pending, self._pending = self._pending, []
        if not pending:
            return []
        # a line's item key and the sha256 of its values (the ledger's), a batch at a time
        keys = [f"{stream}/{record_key}" for stream, record_key, _ in pending]
        shas = [_sha256(_line_json(values).encode("utf-8")).hexdigest() for _, _, values in pending]
        batch = list(zip(keys, shas, pending, strict=True))
        skipped: list[tuple[str, str]] = []
        found = sent.seen_many(keys) if sent is not None else None
        if found is not None and len(found):  # some of these keys were sent: line by line
            kept = []
            for item_key, item_sha, entry in batch:
                if (item_key, item_sha) in found:
                    self.already_sent += 1
                    skipped.append((entry[0], entry[1]))
                else:
                    kept.append((item_key, item_sha, entry))
            batch = kept
        lines = [entry[2] for _, _, entry in batch]
        for values in lines if self._numeric else ():
            for index, column in self._numeric:
                self._total(column, values[index])
        self.digest.update("".join([sha for _, sha, _ in batch]).encode("ascii"))  # in order
        if self.layout.format == "fixed_width":
            end = self.layout.line_terminator
            self._detail.writelines("".join(values) + end for values in lines)
        else:
            self._csv.writerows(lines)
        if batch:  # one JSON array of [item_key, item_sha256, stream, record_key] per batch
            items = [[key, sha, entry[0], entry[1]] for key, sha, entry in batch]
            self._items.write(orjson.dumps(items) + b"\n")
        self.rows += len(lines)
        return skipped

    def _total(self, column: Column, value: str) -> None:
        text = value.strip()
        if not text:
            return
        number = Decimal(text.lstrip("-").lstrip("0") or "0")
        if text.startswith("-"):
            number = -number
        if column.implied_decimal:
            number = number.scaleb(-(column.scale if column.scale is not None else 2))
        self.sums[column.name] = self.sums.get(column.name, Decimal(0)) + number

    def items(self) -> Iterator[tuple[str, str, str, str]]:
        """(item_key, item_sha256, stream, record_key) of every line written, in order."""
        self._items.flush()
        with self.items_path.open("rb") as fh:
            for line in fh:
                yield from map(tuple, orjson.loads(line))

    def context(self, file_name: str, company_code: str, now: dt.datetime) -> dict[str, Any]:
        extra = (1 if self.layout.header else 0) + (1 if self.layout.trailer else 0)
        if self.layout.format == "csv" and self.layout.header_row:
            extra += 1
        return {
            "record_count": self.rows,
            "line_count": self.rows + extra,
            "file_date": now.date(),
            "file_time": now.strftime("%H%M%S"),
            "file_name": file_name,
            "company_code": company_code,
            **{f"sum:{name}": total for name, total in self.sums.items()},
        }

    def finish(self, file_name: str, company_code: str, now: dt.datetime) -> Path:
        """Assemble the final plaintext file (header, detail, trailer) and return its path."""
        self._detail.close()
        self._items.flush()
        layout = self.layout
        context = self.context(file_name, company_code, now)
        out = self._tmp / "payroll"
        with out.open("w", encoding=layout.encoding, newline="") as fh:
            if layout.format == "csv" and layout.header_row:
                csv.writer(
                    fh,
                    delimiter=layout.delimiter,
                    lineterminator=layout.line_terminator,
                    quoting=csv.QUOTE_ALL if layout.quote_all else csv.QUOTE_MINIMAL,
                ).writerow([c.name for c in layout.columns])
            if layout.header:
                fh.write(layout.control_line(layout.header, context) + layout.line_terminator)
            fh.flush()
            with self.detail_path.open("rb") as detail:
                shutil.copyfileobj(detail, fh.buffer, 1 << 20)
            fh.buffer.flush()
            if layout.trailer:
                fh.write(layout.control_line(layout.trailer, context) + layout.line_terminator)
        return out

    def close(self) -> None:
        """Remove every temporary file (they hold personal data in the clear)."""
        for handle in (self._detail, self._items):
            if not handle.closed:
                handle.close()
        shutil.rmtree(self._tmp, ignore_errors=True)
