"""Writing an 834 005010X220A1 interchange, and validating it with pyx12 before it may leave.

Layout of a file (one interchange, one functional group, one or more transaction sets of at
most ``members_per_transaction`` member loops; a family never spans two)::

    ISA*00*  (10 spaces) *00*  ...  *ZZ*SENDER  ...  *261129*0300*^*00501*000000042*0*P*:~
    GS*BE*SENDER*RECEIVER*20261129*0300*42*X*005010X220A1~
    ST*834*0042*005010X220A1~
    BGN*00*HRSYNC42*20261129*0300****2~
    REF*38*<master policy>~              (when configured)
    DTP*007*D8*20261129~
    N1*P5*<sponsor>*FI*<sponsor id>~
    N1*IN*<payer>*FI*<payer id>~
    INS*Y*18*021*28*A***FT~ REF*0F*<employee id>~ DTP*336*D8*...~ NM1*IL*1*...~ N3 N4 DMG
    HD*021**HLT**FAM~ DTP*348*D8*...~ REF*1L*<group>~ ...
    SE*<segments from ST to SE>*0042~
    GE*<transaction sets>*42~
    IEA*1*000000042~

Member loops are written to a spool file as they are planned (memory flat), then the
envelopes are added around them once the number of transaction sets (and so the control
numbers to reserve) is known.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from target_benefits_834.plan import MemberLoop
from target_benefits_834.x12 import COMPONENT, REPETITION, isa_field, segment, x12_text

VERSION = "005010X220A1"


@dataclass(frozen=True)
class Parties:
    """Who sends and who receives (ISA/GS ids, the N1 sponsor and payer loops)."""

    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    sponsor_name: str
    sponsor_id_qualifier: str
    sponsor_id: str
    payer_name: str
    payer_id_qualifier: str
    payer_id: str
    usage: str = "P"  # ISA15: P production, T test
    master_policy: str = ""
    action: str = "2"  # BGN08: 2 change (update), 4 verify, RX replace

    def header(self, today: str) -> list[str]:
        """BGN follows ST; these follow BGN: REF*38, DTP*007, N1*P5, N1*IN."""
        out = []
        if self.master_policy:
            out.append(segment("REF", "38", x12_text(self.master_policy, kind="id", max_len=50)))
        out.append(segment("DTP", "007", "D8", today))
        for code, name, qualifier, ident in (
            ("P5", self.sponsor_name, self.sponsor_id_qualifier, self.sponsor_id),
            ("IN", self.payer_name, self.payer_id_qualifier, self.payer_id),
        ):
            out.append(
                segment(
                    "N1", code, x12_text(name, max_len=60), qualifier, x12_text(ident, kind="id")
                )
            )
        return out


def employment_status(loop: MemberLoop) -> str:
    """INS08 of a subscriber: TE when terminated, else the HRIS employment type (FT default)."""
    return "TE" if loop.maint == "024" else loop.ident.get("employment") or "FT"


def member_segments(loop: MemberLoop) -> list[str]:
    """One 2000 loop (INS ... HD/DTP/REF) as segments."""
    ident = loop.ident
    sub = loop.subscriber
    out = [
        segment(
            "INS",
            "Y" if sub else "N",
            ident["relationship"],
            loop.maint,
            loop.reason,
            "A",
            "",
            "",
            employment_status(loop) if sub else "",
        ),
        segment("REF", "0F", x12_text(loop.employee_id, kind="id", max_len=50)),
    ]
    out += [segment("DTP", qualifier, "D8", day) for qualifier, day in loop.dates]
    ssn = ident.get("ssn") or ""
    out.append(segment("NM1", "IL", "1", ident["last"], ident.get("first"), ident.get("middle"),
                       "", "", "34" if ssn else "", ssn))  # fmt: skip
    address = ident.get("address") if sub else None
    if address:
        out.append(segment("N3", address["line1"], address.get("line2")))
        out.append(segment("N4", address["city"], address.get("state"), address.get("postal"),
                           address.get("country")))  # fmt: skip
    if ident.get("dob"):
        out.append(segment("DMG", "D8", ident["dob"], ident.get("gender") or "U"))
    for hd in loop.coverages:
        out.append(segment("HD", hd.maint, "", hd.line, "", hd.level))
        out.append(segment("DTP", "348", "D8", hd.begin))
        if hd.end:
            out.append(segment("DTP", "349", "D8", hd.end))
        if hd.maint == "001" and hd.since and hd.since != hd.begin:
            out.append(segment("DTP", "303", "D8", hd.since))
        if hd.group:
            out.append(segment("REF", "1L", hd.group))
    return out


class Body:
    """Member loops spooled to a file, cut into transaction sets between families."""

    def __init__(self, path: Path, members_per_transaction: int) -> None:
        self.path = path
        self.limit = max(1, members_per_transaction)
        self._fh: IO[str] = path.open("w", encoding="ascii", newline="")
        path.chmod(0o600)
        self.chunks: list[int] = []  # segment count of each transaction set's body
        self._members = 0  # in the current transaction set
        self.members = 0
        self.hash = hashlib.sha256()

    def add_family(self, loops: list[MemberLoop]) -> None:
        if not loops:
            return
        if not self.chunks or (self._members + len(loops) > self.limit and self._members):
            if self.chunks or self._members:
                self._fh.write("\n")  # a blank line ends a transaction set's body
            self.chunks.append(0)
            self._members = 0
        segments = [seg for loop in loops for seg in member_segments(loop)]
        # one write and one hash update per family: the same bytes as one per segment
        self._fh.write("".join(seg + "\n" for seg in segments))
        self.hash.update("".join(segments).encode("ascii"))
        self.chunks[-1] += len(segments)
        self._members += len(loops)
        self.members += len(loops)

    def close(self) -> None:
        self._fh.close()

    def transaction_bodies(self) -> Iterator[Iterator[str]]:
        with self.path.open(encoding="ascii") as fh:
            for count in self.chunks:
                yield (fh.readline().rstrip("\n") for _ in range(count))
                if count:
                    fh.readline()  # the blank line between bodies


def content_key(parties: Parties, body: Body) -> str:
    """What the file says, without its control numbers and dates: the "already sent" key."""
    digest = body.hash.copy()
    digest.update(json.dumps(
        [parties.receiver_id, parties.sponsor_id, parties.payer_id, parties.master_policy]
    ).encode())  # fmt: skip
    return "834:" + digest.hexdigest()


def write_interchange(out: Path, parties: Parties, body: Body, first: int, now: dt.datetime) -> int:
    """Write the whole file (mode 0600); returns the number of segments written."""
    date8, date6, time4 = now.strftime("%Y%m%d"), now.strftime("%y%m%d"), now.strftime("%H%M")
    count = 0
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii", newline="") as fh:

        def put(seg: str) -> None:
            nonlocal count
            fh.write(seg + "\n")
            count += 1

        # ISA is fixed width and names the separators themselves (ISA11 ^, ISA16 :)
        put("*".join((
            "ISA", "00", " " * 10, "00", " " * 10,
            parties.sender_qualifier, isa_field(parties.sender_id, 15),
            parties.receiver_qualifier, isa_field(parties.receiver_id, 15),
            date6, time4, REPETITION, "00501", f"{first:09d}", "0", parties.usage, COMPONENT,
        )) + "~")  # fmt: skip
        put(segment("GS", "BE", x12_text(parties.sender_id, kind="id", max_len=15),
                    x12_text(parties.receiver_id, kind="id", max_len=15), date8, time4,
                    str(first), "X", VERSION))  # fmt: skip
        for n, lines in enumerate(body.transaction_bodies()):
            control = f"{first + n:04d}"
            segments = 0

            def st(seg: str) -> None:
                nonlocal segments
                put(seg)
                segments += 1

            st(segment("ST", "834", control, VERSION))
            st(segment("BGN", "00", f"HRSYNC{first + n}", date8, time4, "", "", "", parties.action))
            for seg in parties.header(date8):
                st(seg)
            for seg in lines:
                st(seg)
            st(segment("SE", str(segments + 1), control))
        put(segment("GE", str(len(body.chunks)), str(first)))
        put(segment("IEA", "1", f"{first:09d}"))
    return count


# --- validation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Validation:
    valid: bool
    errors: list[str]


def validate(path: Path, *, workers: int = 1, full: bool = False) -> Validation:
    """pyx12's verdict on the file: its Python API's boolean, and its errors as text.

    pyx12 checks about 4,000 segments a second on one core (measured: benchmarks/results/
    target_benefits_834.md), 10 minutes of CPU for a 100,000-employee file. Unless ``full``,
    :func:`target_benefits_834.fastcheck.fast_verdict` first gives pyx12's verdict from pyx12
    run on the file's distinct member-loop shapes and pyx12's segment checks run once per
    distinct segment; a file it accepts is valid. A file it does not accept (or ``full``) is
    validated by pyx12 in full, so every error reported is pyx12's own: a file of several
    transaction sets one transaction set at a time, each in its own copy of the file's ISA/GS
    envelope, in ``workers`` processes, the envelope counts (GE01, IEA01) checked here; a file
    of one transaction set whole.
    """
    if not full:
        from target_benefits_834.fastcheck import fast_verdict

        verdict = fast_verdict(path, workers=workers)
        if verdict.valid:
            return Validation(True, [])
        logging.getLogger(__name__).info("%s: %s; pyx12 validates it in full", path.name,
                                         verdict.reason)  # fmt: skip
    blocks = _transaction_sets(path)
    if len(blocks) <= 1:
        return _pyx12(path)
    with tempfile.TemporaryDirectory(prefix="x12-chunks-", dir=path.parent) as tmp:
        chunk_files = _write_chunks(path, blocks, Path(tmp))
        with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
            results = list(pool.map(_pyx12, chunk_files))
    errors: list[str] = []
    for (control, start, _), result in zip(blocks, results, strict=True):
        errors += [f"transaction set {control} (file line {start}+): {e}" for e in result.errors]
    errors += _envelope_errors(path, len(blocks))
    return Validation(all(r.valid for r in results) and not errors, errors)


def _transaction_sets(path: Path) -> list[tuple[str, int, int]]:
    """(ST02, first line, last line) of each transaction set (1-based line numbers)."""
    out: list[tuple[str, int, int]] = []
    start, control = 0, ""
    with path.open(encoding="ascii", errors="replace") as fh:
        for n, line in enumerate(fh, start=1):
            if line.startswith("ST*"):
                start, control = n, line.split("*")[2] if line.count("*") >= 2 else "?"
            elif line.startswith("SE*") and start:
                out.append((control, start, n))
                start = 0
    return out


def _write_chunks(path: Path, blocks: list[tuple[str, int, int]], tmp: Path) -> list[Path]:
    with path.open(encoding="ascii", errors="replace") as fh:
        lines = iter(fh)
        isa, gs = next(lines), next(lines)
        trailer_ge = "GE*1*" + gs.split("*")[6] + "~\n"
        trailer_iea = "IEA*1*" + isa.split("*")[13] + "~\n"
        files, line_no = [], 2
        for control, first, last in blocks:
            chunk = tmp / f"{control}.x12"
            with chunk.open("w", encoding="ascii") as out:
                out.write(isa)
                out.write(gs)
                for line in lines:
                    line_no += 1
                    if line_no >= first:
                        out.write(line)
                    if line_no == last:
                        break
                out.write(trailer_ge)
                out.write(trailer_iea)
            files.append(chunk)
    return files


def _envelope_errors(path: Path, transaction_sets: int) -> list[str]:
    isa = gs = ge = iea = None
    with path.open(encoding="ascii", errors="replace") as fh:
        for line in fh:
            tag = line[:3]
            if tag == "ISA":
                isa = line.rstrip("~\n").split("*")
            elif tag == "GS*":
                gs = line.rstrip("~\n").split("*")
            elif tag == "GE*":
                ge = line.rstrip("~\n").split("*")
            elif tag == "IEA":
                iea = line.rstrip("~\n").split("*")
    errors = []
    if not (isa and gs and ge and iea):
        return ["envelope: ISA, GS, GE and IEA are required"]
    if ge[1] != str(transaction_sets) or ge[2] != gs[6]:
        errors.append(f"GE: {ge[1:]} does not close GS {gs[6]} with {transaction_sets} sets")
    if iea[1] != "1" or iea[2] != isa[13]:
        errors.append(f"IEA: {iea[1:]} does not close ISA {isa[13]}")
    return errors


def _pyx12(path: Path) -> Validation:
    import pyx12.params
    import pyx12.x12n_document

    report = io.StringIO()
    logger = logging.getLogger("pyx12")
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.CRITICAL)  # we report its errors ourselves, once
    logger.propagate = False
    try:
        valid = bool(
            pyx12.x12n_document.x12n_document(
                param=pyx12.params.params(),
                src_file=str(path),
                fd_997=None,
                fd_html=None,
                fd_json=report,
            )
        )
    except Exception as exc:
        return Validation(False, [f"pyx12 could not read the file: {type(exc).__name__}: {exc}"])
    finally:
        logger.setLevel(level)
        logger.propagate = propagate
    errors: list[str] = []
    with contextlib.suppress(ValueError):
        errors = _flatten(json.loads(report.getvalue() or "{}"))
    if not valid and not errors:
        errors = ["pyx12 rejected the file without detail"]
    return Validation(valid and not errors, errors)


def _flatten(doc: dict[str, Any]) -> list[str]:
    out: list[str] = []

    def errs(node: dict[str, Any], where: str) -> None:
        for err in node.get("errors") or []:
            out.append(f"{where}: {err.get('err_str')} (code {err.get('err_cde')})")

    for isa in doc.get("interchanges") or []:
        errs(isa, f"ISA {isa.get('isa_trn_set_id')}")
        for gs in isa.get("groups") or []:
            errs(gs, f"GS {gs.get('gs_control_num')}")
            for st in gs.get("transactions") or []:
                errs(st, f"ST {st.get('trn_set_control_num')}")
                for seg in st.get("segments") or []:
                    where = f"line {seg.get('cur_line')} {seg.get('seg_id')}"
                    errs(seg, where)
                    for ele in seg.get("elements") or []:
                        errs(
                            ele, f"{where}{ele.get('ele_pos'):02d}" if ele.get("ele_pos") else where
                        )
    return out
