"""pyx12's verdict on a large 834 in seconds: pyx12 on the file's distinct member-loop shapes, and
pyx12's own segment checks, once per distinct segment, on everything else.

pyx12 checks about 4,000 segments a second on one core; a 100,000-employee file has 2.5 million.
Most of that work repeats: the member loops (INS ... up to the next INS or SE) of a large file
take a few hundred distinct *shapes* (the sequence of segment ids, with the qualifier element
of the ids whose map nodes are told apart by one, which is all pyx12's map walker reads to
place a segment: ``segment_if.is_match``), and most of their segments repeat word for word
(``HD*021**HLT**FAM``, ``DTP*348*D8*20260101``). This module therefore asks pyx12 for the two
things it decides, and asks each question once:

1. **Structure**: the file with its member loops reduced to the first loop of each shape (plus
   the first and the last loop of every transaction set, so that each ``header -> first loop``
   and ``last loop -> SE`` transition is the file's own), every other segment verbatim (ISA, GS,
   each ST, header, GE, IEA) and each SE01 recounted, goes through pyx12 whole
   (``x12n_document``). Its map walker places every segment of a loop by the loop's shape, and
   repeat counts live inside one member loop (loop 2000 repeats without limit in the
   005010X220A1 map), so a shape pyx12 accepts once is accepted everywhere. pyx12's callback
   tells which map node each segment of each shape is.
2. **Segments**: every segment of every other loop is checked against that node with pyx12's
   own ``segment_if.is_valid_errors`` (elements, lengths, codes, dates, syntax rules) and the
   reader's per-segment checks (empty segment, segment id, leading space, trailing element
   separator). Element values that pyx12 accepts on their own are replaced by one accepted
   value of the same element (and type context) before the segment is looked up: pyx12's
   segment check reads a value only through that element's own check and its presence (syntax
   rules), so ``NM1*IL*1*<name>*...`` is decided once per element value and once per segment
   pattern, not once per member. An element's own check is remembered per value; for a
   code-less AN/ID element per value with letters folded to ``A`` and digits to ``0``
   (:data:`_CLASS`). DTP02 (which gives DTP03 its date format) and composites are kept as
   they are; DTP03 and 1251 values are checked with the type pyx12 gives them.
3. **Counts**: each SE01 against the segments of its transaction set (the reduced file recounts
   them), as pyx12's reader does.

The verdict is pyx12's on the whole file (tests/targets/target_benefits_834/
test_fastcheck.py compares both on generated and fuzzed files). Whatever this check rejects is
then validated by pyx12 in full (``document.validate``), so every error message a user sees is
pyx12's own.
"""

from __future__ import annotations

import concurrent.futures
import functools
import io
import logging
import multiprocessing
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyx12.map_if
import pyx12.params
import pyx12.segment
import pyx12.x12n_document
from pyx12.map_if import composite_if, element_if

MAP_FILE = "834.5010.X220.A1.xml"
#: what pyx12's DTP check passes to DTP03 as its type: DTP02 when it is one of these
_DATE_FORMATS = ("RD8", "D8", "D6", "DT", "TM")
#: map segment nodes as (position, index) steps through each loop's ``pos_map``
Address = tuple[tuple[int, int], ...]
#: at most this many raw segments are remembered word for word (names and ids never repeat)
_RAW_CACHE = 300_000
#: pyx12 checks an AN (or code-less ID) value character by character against one character
#: class (validation.IsValidDataType: rec_ID_B / rec_ID_E), plus its length, control characters
#: and trailing spaces: upper-case letters and digits are all in that class, so a value with
#: each of them replaced by ``A`` / ``0`` gets the same verdict (names, ids, SSNs, streets)
_CLASS = str.maketrans(
    dict.fromkeys("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "A") | dict.fromkeys("0123456789", "0")
)


@dataclass
class Parsed:
    """A file as segments, and its transaction sets' member loops and their shapes."""

    seg_term: str
    ele_term: str
    subele_term: str
    segments: list[str]
    #: per transaction set: (index of ST, index of SE, [(first, end, shape) of each member
    #: loop]); a shape is a number, the same for loops pyx12's walker reads alike (:func:`parse`)
    sets: list[tuple[int, int, list[tuple[int, int, int]]]] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str  # why not (for the log; pyx12's full run gives the errors)


@functools.cache
def _map() -> Any:
    return pyx12.map_if.load_map_file(MAP_FILE, pyx12.params.params())


@functools.cache
def match_positions() -> dict[str, frozenset[int]]:
    """Per segment id of the 834 map: the elements pyx12's walker reads to tell its segment
    nodes apart (``segment_if.is_match``: a qualifier such as DTP01, REF01, NM101)."""
    found: dict[str, set[int]] = {}
    for node in _map().loop_segment_iterator():
        if node.is_segment():
            key = node._resolve_unique_key_field(node.id, with_qual=False)
            found.setdefault(node.id, set()).update(() if key is None else (key[1],))
    return {seg_id: frozenset(p) for seg_id, p in found.items()}


def parse(text: str) -> Parsed | None:
    """Split as pyx12's RawX12File does (separators from the ISA, leading CR/LF dropped, an
    empty segment ends the file); None when the text is not something this check handles
    (pyx12 decides those in full).

    Each segment's *key* is what pyx12's walker reads to place it: its id, and for the ids
    whose map nodes are told apart by a qualifier (:func:`match_positions`) that element too;
    a segment id the map does not know keeps the whole segment."""
    if len(text) < 106 or not text.startswith("ISA"):
        return None
    seg_term, ele_term, subele_term = text[105], text[3], text[104]
    if len({seg_term, ele_term, subele_term}) < 3:
        return None
    # a terminator and the CR/LF after it (pyx12 strips them from the start of each segment)
    segments = re.split(re.escape(seg_term) + "[\n\r]*", text)
    segments.pop()  # what follows the last terminator is not a segment
    if "" in segments:
        del segments[segments.index("") :]
    out = Parsed(seg_term, ele_term, subele_term, segments)
    positions = match_positions()
    plain = {k for k, v in positions.items() if not v}
    first = {k for k, v in positions.items() if v == frozenset({1})}
    shapes: dict[tuple[str, ...], int] = {}
    keys: list[str] = []  # of the current member loop
    st = -1
    loops: list[tuple[int, int, int]] = []
    loop_start = -1

    def close(end: int) -> None:
        shape = shapes.setdefault(tuple(keys), len(shapes))
        loops.append((loop_start, end, shape))
        keys.clear()

    for n, seg in enumerate(segments):
        i = seg.find(ele_term)
        seg_id = seg[:i] if i >= 0 else seg
        if seg_id == "INS":
            if st >= 0:
                if loop_start >= 0:
                    close(n)
                loop_start = n
        elif seg_id == "ST":
            if st >= 0:
                return None
            st, loops, loop_start = n, [], -1
        elif seg_id == "SE" and st >= 0:
            if loop_start >= 0:
                close(n)
            out.sets.append((st, n, loops))
            st, loop_start = -1, -1
        if loop_start >= 0:
            if seg_id in plain:
                keys.append(seg_id)
            elif seg_id in first and i >= 0:
                j = seg.find(ele_term, i + 1)
                keys.append(seg if j < 0 else seg[:j])
            else:
                keys.append(seg)
    if st >= 0 or not out.sets:
        return None
    return out


def _node_address(node: Any) -> Address:
    """A map segment node as (position, index) steps through its loops' ``pos_map`` from the
    map root: the same in every load of the map."""
    out: list[tuple[int, int]] = []
    while node.parent is not None:
        siblings = node.parent.pos_map[node.pos]
        out.append((node.pos, next(i for i, c in enumerate(siblings) if c is node)))
        node = node.parent
    return tuple(reversed(out))


class SegmentChecker:
    """pyx12's per-segment verdict at a map node, memoised (see the module docstring)."""

    def __init__(self, seg_term: str, ele_term: str, subele_term: str) -> None:
        self.terms = (seg_term, ele_term, subele_term)
        self.map = _map()
        self._nodes: dict[Address, Any] = {}
        self._raw: dict[tuple[int, str], bool] = {}
        self._segments: dict[tuple[int, tuple[str, ...]], bool] = {}
        self._elements: dict[tuple[int, int, tuple[str, ...], str], bool] = {}
        self._canonical: dict[tuple[int, int, tuple[str, ...]], str] = {}
        self._layout: dict[int, list[tuple[Any, tuple[str, ...] | None, bool]]] = {}

    def node(self, address: Address) -> Any:
        found = self._nodes.get(address)
        if found is None:
            found = self.map
            for pos, i in address:
                found = found.pos_map[pos][i]
            self._nodes[address] = found
        return found

    def _elements_of(self, node: Any) -> list[tuple[Any, tuple[str, ...] | None, bool]]:
        """Per element index (0-based, as pyx12's segment check counts): the element node, the
        type list pyx12 passes to its check (None: the DTP03 case, decided per segment) and
        whether the value's letters and digits may be folded (:data:`_CLASS`); (None, (),
        False) for a composite, whose value is never replaced."""
        found = self._layout.get(id(node))
        if found is None:
            found = []
            type_list: list[str] = []
            for i in range(node.get_child_count()):
                child = node.get_child_node_by_idx(i)
                if isinstance(child, element_if):
                    if child.data_ele == "1250":
                        type_list.extend(child.valid_codes)
                    context: tuple[str, ...] | None = ()
                    if i == 2 and node.id == "DTP":
                        context = None
                    elif child.data_ele == "1251" and type_list:
                        context = tuple(type_list)
                    fold = (
                        context == ()
                        and child.get_data_type() in ("AN", "ID")
                        and not child._valid_codes_set
                        and child.external_codes is None
                        and child.rec is None
                    )
                    found.append((child, context, fold))
                else:
                    assert child is None or isinstance(child, composite_if)
                    found.append((None, (), False))
            self._layout[id(node)] = found
        return found

    def _element_ok(
        self, node: Any, i: int, child: Any, context: tuple[str, ...], value: str
    ) -> bool:
        key = (id(node), i, context, value)
        ok = self._elements.get(key)
        if ok is None:
            seg_term, ele_term, subele_term = self.terms
            data = pyx12.segment.Segment(f"{node.id}{ele_term}{value}", seg_term, ele_term,
                                         subele_term).get("01")  # fmt: skip
            ok = child.is_valid_errors(data, list(context))[0]
            self._elements[key] = ok
        return ok

    def check(self, node: Any, raw: str) -> bool:
        """pyx12's verdict on one segment (``raw``, without its terminator) at ``node``."""
        key = (id(node), raw)
        ok = self._raw.get(key)
        if ok is None:
            ok = self._check(node, raw)
            if len(self._raw) < _RAW_CACHE:
                self._raw[key] = ok
        return ok

    def _check(self, node: Any, raw: str) -> bool:
        seg_term, ele_term, subele_term = self.terms
        if raw.startswith(" ") or raw.endswith(ele_term):
            return False  # the reader's leading-space and trailing-separator errors
        parts = raw.split(ele_term)
        layout = self._elements_of(node)
        dtype: tuple[str, ...] = ()
        for i in range(min(len(parts) - 1, len(layout))):
            value = parts[i + 1]
            if i == 1 and node.id == "DTP":
                dtype = (value,) if value in _DATE_FORMATS else ()
                continue  # DTP03's type: kept as it is
            child, context, fold = layout[i]
            if child is None or value == "" or subele_term in value:
                continue
            if fold:
                value = value.translate(_CLASS)
            if context is None:
                context = dtype
            if not self._element_ok(node, i, child, context, value):
                return False  # pyx12's segment check fails on this element alone
            parts[i + 1] = self._canonical.setdefault((id(node), i, context), value)
        key = (id(node), tuple(parts))
        ok = self._segments.get(key)
        if ok is None:
            seg = pyx12.segment.Segment(ele_term.join(parts), seg_term, ele_term, subele_term)
            ok = (
                not seg.is_empty()
                and seg.is_seg_id_valid()
                and seg.get_seg_id() == node.id
                and node.is_valid_errors(seg)[0]
            )
            self._segments[key] = ok
        return ok


def reduce(parsed: Parsed) -> tuple[list[str], list[int]]:
    """The reduced file (see the module docstring) as segments, and the index in the
    original file of each of its segments."""
    seen: set[int] = set()
    out: list[str] = []
    origin: list[int] = []
    segs, ele = parsed.segments, parsed.ele_term
    cursor = 0
    for _st, se, loops in parsed.sets:
        first_loop = loops[0][0] if loops else se
        origin.extend(range(cursor, first_loop))  # envelope, ST and header verbatim
        last = len(loops) - 1
        for i, (start, end, shape) in enumerate(loops):
            if shape in seen and 0 < i < last:
                continue
            seen.add(shape)
            origin.extend(range(start, end))
        origin.append(se)
        cursor = se + 1
    origin.extend(range(cursor, len(segs)))
    out = [segs[n] for n in origin]
    # each SE01 recounted (ST to SE of the reduced set)
    st_at = 0
    for k, n in enumerate(origin):
        if segs[n].startswith("ST" + ele):
            st_at = k
        elif segs[n].startswith("SE" + ele):
            parts = out[k].split(ele)
            if len(parts) > 1:
                parts[1] = str(k - st_at + 1)
            out[k] = ele.join(parts)
    return out, origin


def structure(parsed: Parsed, reduced: list[str]) -> tuple[bool, list[Address | None]]:
    """pyx12 on the reduced file: its verdict, and each reduced segment's map node address."""
    nodes: list[Address | None] = []

    def seen(seg: Any, src: Any, node: Any, valid: bool) -> None:
        in_map = node is not None and node.id not in ("ISA", "GS", "GE", "IEA")
        nodes.append(_node_address(node) if in_map else None)

    text = "".join(s + parsed.seg_term + "\n" for s in reduced)
    logger = logging.getLogger("pyx12")
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.CRITICAL)
    logger.propagate = False
    try:
        valid = bool(
            pyx12.x12n_document.x12n_document(
                param=pyx12.params.params(),
                src_file=io.StringIO(text),
                fd_997=None,
                fd_html=None,
                fd_json=io.StringIO(),
                callback=seen,
            )
        )
    except Exception:
        return False, nodes
    finally:
        logger.setLevel(level)
        logger.propagate = propagate
    return valid and len(nodes) == len(reduced), nodes


# The loops left to pyx12's segment checks, set before the worker processes fork (they read it).
_WORK: tuple[Parsed, list[tuple[int, int, tuple[Address, ...]]]] | None = None


def check_loops(lo: int, hi: int) -> Verdict:
    """Loops ``lo:hi`` of the work list against pyx12's segment checks (in a worker)."""
    assert _WORK is not None
    parsed, work = _WORK
    checker = SegmentChecker(parsed.seg_term, parsed.ele_term, parsed.subele_term)
    segs = parsed.segments
    check = checker.check
    by_shape: dict[int, tuple[Any, ...]] = {}  # one tuple of addresses per shape
    for start, end, addresses in work[lo:hi]:
        nodes = by_shape.get(id(addresses))
        if nodes is None:
            nodes = by_shape[id(addresses)] = tuple(checker.node(a) for a in addresses)
        for n, node in zip(range(start, end), nodes, strict=True):
            if not check(node, segs[n]):
                return Verdict(False, f"segment {n + 1} ({segs[n][:3]}) fails pyx12's checks")
    return Verdict(True, "")


def _se_count_ok(parsed: Parsed) -> bool:
    ele = parsed.ele_term
    for st, se, _ in parsed.sets:
        parts = parsed.segments[se].split(ele)
        if len(parts) < 2 or parts[1] != str(se - st + 1):
            return False
    return True


def fast_verdict(path: Path, *, workers: int = 1) -> Verdict:
    """pyx12's verdict on the file at ``path``, without running pyx12 on every segment."""
    global _WORK
    parsed = parse(path.read_text(encoding="ascii", errors="replace"))
    if parsed is None:
        return Verdict(False, "not a file this check reads (pyx12 decides it)")
    if not _se_count_ok(parsed):
        return Verdict(False, "an SE01 does not count its transaction set's segments")
    reduced, origin = reduce(parsed)
    ok, nodes = structure(parsed, reduced)
    if not ok:
        return Verdict(False, "pyx12 rejects the file's structure or its verbatim segments")
    by_origin = dict(zip(origin, nodes, strict=True))
    shapes: dict[int, tuple[Address, ...]] = {}
    work: list[tuple[int, int, tuple[Address, ...]]] = []
    for _, _, loops in parsed.sets:
        for start, end, shape in loops:
            if start in by_origin:  # pyx12 checked this loop itself
                if shape not in shapes:
                    found = [by_origin[n] for n in range(start, end)]
                    if any(a is None for a in found):
                        return Verdict(False, "pyx12 did not place a segment")
                    shapes[shape] = tuple(a for a in found if a is not None)
                continue
            addresses = shapes.get(shape)
            if addresses is None:  # reduce() keeps the first loop of every shape
                return Verdict(False, "a member loop's shape was not checked")
            work.append((start, end, addresses))
    _WORK = (parsed, work)
    try:
        if workers <= 1 or len(work) < 5_000:
            return check_loops(0, len(work))
        size = -(-len(work) // workers)
        context = multiprocessing.get_context("fork")  # the workers read _WORK, not a copy
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            starts = range(0, len(work), size)
            verdicts = list(pool.map(check_loops, starts, [lo + size for lo in starts]))
        return next((v for v in verdicts if not v.valid), Verdict(True, ""))
    finally:
        _WORK = None
