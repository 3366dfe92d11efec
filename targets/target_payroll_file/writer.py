"""Builds the payroll file on disk, one line at a time (memory stays flat for any size).

Detail lines go to a private temporary directory (mode 0700) as they come; the header and
trailer (fixed width) need the record count and hash totals, so the final file is assembled
at the end: header + detail + trailer. Every line also notes its item key (stream + record
key) and the sha256 of its values, so lines already sent are skipped and, once the file is
delivered, recorded as sent.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from hrsync.transfer import SentItems
from target_payroll_file.layout import Layout

__all__ = ["PayrollFileBuilder"]


class PayrollFileBuilder:
    def __init__(self, layout: Layout, *, work_dir: str | Path | None = None) -> None:
        self.layout = layout
        self._tmp = Path(tempfile.mkdtemp(prefix="hrsync-payroll-", dir=work_dir))  # 0700
        self.detail_path = self._tmp / "detail"
        self.items_path = self._tmp / "items.jsonl"
        self._detail: IO[str] = self.detail_path.open("w", encoding=layout.encoding, newline="")
        self._items: IO[str] = self.items_path.open("w", encoding="utf-8")
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
        self._numeric = [
            (i, c) for i, c in enumerate(layout.columns) if c.type in {"integer", "decimal"}
        ]

    def add(self, stream: str, record_key: str, values: list[str], sent: SentItems | None) -> bool:
        """Write one line unless this exact line was sent before; True when written."""
        item_key = f"{stream}/{record_key}"
        item_sha = hashlib.sha256(
            json.dumps(values, ensure_ascii=False).encode("utf-8")
        ).hexdigest()
        if sent is not None and sent.seen(item_key, item_sha):
            self.already_sent += 1
            return False
        if self.layout.format == "fixed_width":
            self._detail.write("".join(values) + self.layout.line_terminator)
        else:
            self._csv.writerow(values)
        self._items.write(json.dumps([item_key, item_sha, stream, record_key]) + "\n")
        self.digest.update(item_sha.encode("ascii"))
        self.rows += 1
        for index, column in self._numeric:
            text = values[index].strip()
            if not text:
                continue
            number = Decimal(text.lstrip("-").lstrip("0") or "0")
            if text.startswith("-"):
                number = -number
            if column.implied_decimal:
                number = number.scaleb(-(column.scale if column.scale is not None else 2))
            self.sums[column.name] = self.sums.get(column.name, Decimal(0)) + number
        return True

    def items(self) -> Iterator[tuple[str, str, str, str]]:
        """(item_key, item_sha256, stream, record_key) of every line written, in order."""
        self._items.flush()
        with self.items_path.open(encoding="utf-8") as fh:
            for line in fh:
                key, sha, stream, record_key = json.loads(line)
                yield key, sha, stream, record_key

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
