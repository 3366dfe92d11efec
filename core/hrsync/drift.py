"""Schema drift: what a vendor sends that the stream's schema does not declare.

A vendor adds a field, or starts sending a number where it sent text. The tap keeps running
(the record is still good), tells the operator once per stream and field, and leaves unknown
fields out of its output until the schema declares them - singer-sdk would otherwise repeat its
own warning for every record, and a target might create a column nobody reviewed.

:class:`SchemaDrift` checks one stream's records (the schema is compiled once); streams mix in
:class:`ReportsDrift` and call :meth:`ReportsDrift.report_drift` from ``post_process``.
"""

from __future__ import annotations

import typing as t
from decimal import Decimal

from singer_sdk.streams import Stream

if t.TYPE_CHECKING:
    import logging

__all__ = ["ReportsDrift", "SchemaDrift"]

#: object shapes remembered per schema object (beyond it, objects are checked in full)
_MEMO_LIMIT = 4096

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int, Decimal),  # singer-sdk parses JSON numbers as Decimal
    "number": (int, float, Decimal),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


class _Field(t.NamedTuple):
    types: tuple[type, ...]
    bools: bool
    type_names: str
    obj: _Node | None
    items: _Node | None


class _Node(t.NamedTuple):
    """An object schema compiled for the per-record check."""

    props: dict[str, _Field]
    #: None: unknown keys are drift; True: anything goes; a _Field: the schema of extra keys
    extra: _Field | t.Literal[True] | None
    #: (keys, value types) of an object checked before -> (its unknown keys, the keys whose
    #: values are checked further down): what the check of this level found depends on the
    #: keys and the types of the values only, and it has been reported already
    memo: dict[tuple[tuple[str, ...], tuple[type, ...]], tuple[tuple[str, ...], tuple[str, ...]]]

    @classmethod
    def compile(cls, schema: t.Mapping[str, t.Any], *, nested: bool) -> _Node:
        extra = schema.get("additionalProperties")
        return cls(
            props={k: _field(v, nested) for k, v in (schema.get("properties") or {}).items()},
            extra=_field(extra, nested) if isinstance(extra, dict) else (True if extra else None),
            memo={},
        )


def _field(schema: t.Mapping[str, t.Any], nested: bool) -> _Field:
    allowed = schema.get("type") or []
    names = [allowed] if isinstance(allowed, str) else list(allowed)
    items = schema.get("items")
    return _Field(
        types=tuple(pt for name in names for pt in _JSON_TYPES.get(name, ())),
        bools="boolean" in names,
        type_names="/".join(names),
        obj=_Node.compile(schema, nested=True)
        if nested and schema.get("properties") is not None
        else None,
        items=_Node.compile(items, nested=True)
        if nested and isinstance(items, dict) and items.get("properties") is not None
        else None,
    )


class SchemaDrift:
    """Checks the records of one stream against its schema.

    - A field the schema lacks: one warning per stream and field, then the field is removed
      from the record, also inside objects and arrays of objects the schema describes.
    - A value of a type the schema does not allow: one warning per field (the value stays:
      the target's validation decides).

    ``nested=False`` checks only the names of top-level fields (a set difference per record):
    for wide records whose values already have the schema's types, or rows the tap builds
    itself, where walking every value would cost more than it tells.

    ``declared_in`` says where a contributor declares a new field (``{stream}`` is replaced).
    """

    def __init__(
        self,
        *,
        stream: str,
        vendor: str,
        schema: t.Mapping[str, t.Any],
        logger: logging.Logger,
        nested: bool = True,
        declared_in: str = "schemas/{stream}.json",
    ) -> None:
        self.stream, self.vendor, self.logger = stream, vendor, logger
        self.declared_in = declared_in.format(stream=stream)
        self.root = _Node.compile(schema, nested=nested)
        self.nested = nested
        self.names = frozenset(self.root.props)
        self.reported: set[str] = set()

    def check(self, row: dict[str, t.Any]) -> None:
        """Report ``row``'s drift (once per field) and remove its unknown fields."""
        if self.nested:
            self._check(row, self.root, "")
        elif self.root.extra is None and not row.keys() <= self.names:
            self._unknown(row, [key for key in row if key not in self.names], "")

    def _check(self, obj: dict[str, t.Any], node: _Node, prefix: str) -> None:
        shape = (tuple(obj), tuple(map(type, obj.values())))
        seen = node.memo.get(shape)
        if seen is None:
            self._check_all(obj, node, prefix)
            if len(node.memo) < _MEMO_LIMIT:
                node.memo[shape] = self._findings(shape, node)
            return
        unknown, deeper = seen
        for key in deeper:
            value, spec = obj[key], t.cast(_Field, node.props.get(key, node.extra))
            if spec.obj is not None and value.__class__ is dict:
                self._check(value, spec.obj, f"{prefix}{key}.")
            elif spec.items is not None and value.__class__ is list:
                for item in value:
                    if item.__class__ is dict:
                        self._check(item, spec.items, f"{prefix}{key}.")
        for key in unknown:
            del obj[key]

    @staticmethod
    def _findings(
        shape: tuple[tuple[str, ...], tuple[type, ...]], node: _Node
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(unknown keys, keys checked further down) of objects of this shape."""
        unknown: list[str] = []
        deeper: list[str] = []
        for key, kind in zip(*shape, strict=True):
            spec = node.props.get(key, node.extra)
            if spec is None:
                unknown.append(key)
            elif spec is not True and (
                (kind is dict and spec.obj is not None) or (kind is list and spec.items is not None)
            ):
                deeper.append(key)
        return tuple(unknown), tuple(deeper)

    def _check_all(self, obj: dict[str, t.Any], node: _Node, prefix: str) -> None:
        unknown: list[str] = []
        for key, value in obj.items():
            spec = node.props.get(key, node.extra)
            if spec is None:
                unknown.append(key)
                continue
            if spec is True or value is None:
                continue
            if spec.types and (
                not isinstance(value, spec.types) or (value.__class__ is bool and not spec.bools)
            ):
                self._warn_once(
                    f"{prefix}{key}:type",
                    "Schema drift in stream '%s': field '%s' arrived as %s, schema allows %s",
                    self.stream,
                    f"{prefix}{key}",
                    type(value).__name__,
                    spec.type_names,
                )
            if spec.obj is not None and value.__class__ is dict:
                self._check(value, spec.obj, f"{prefix}{key}.")
            elif spec.items is not None and value.__class__ is list:
                for item in value:
                    if item.__class__ is dict:
                        self._check(item, spec.items, f"{prefix}{key}.")
        if unknown:
            self._unknown(obj, unknown, prefix)

    def _unknown(self, obj: dict[str, t.Any], unknown: list[str], prefix: str) -> None:
        for key in unknown:
            self._warn_once(
                f"{prefix}{key}",
                "Schema drift in stream '%s': %s sent field '%s', which the schema lacks; it is "
                "left out of the output until %s declares it",
                self.stream,
                self.vendor,
                f"{prefix}{key}",
                self.declared_in,
            )
            del obj[key]

    def _warn_once(self, key: str, message: str, *args: t.Any) -> None:
        if key not in self.reported:
            self.reported.add(key)
            self.logger.warning(message, *args)


class ReportsDrift(Stream):
    """Mix in before the stream's base class; call :meth:`report_drift` in ``post_process``.

    Declare ``drift_vendor`` (the name in the warning); ``drift_nested = False`` checks
    top-level fields only; ``drift_declared_in`` names where new fields are declared;
    :meth:`drift_schema` is the stream's schema unless overridden.
    """

    drift_vendor: t.ClassVar[str] = "The API"
    drift_nested: t.ClassVar[bool] = True
    drift_declared_in: t.ClassVar[str] = "schemas/{stream}.json"

    def drift_schema(self) -> t.Mapping[str, t.Any]:
        """The schema records are checked against (the stream's own by default)."""
        return self.schema

    @property
    def drift(self) -> SchemaDrift:
        drift = self.__dict__.get("_hrsync_drift")
        if drift is None:
            drift = SchemaDrift(
                stream=self.name,
                vendor=self.drift_vendor,
                schema=self.drift_schema(),
                logger=self.logger,
                nested=self.drift_nested,
                declared_in=self.drift_declared_in,
            )
            self.__dict__["_hrsync_drift"] = drift
        return t.cast(SchemaDrift, drift)

    def report_drift(self, row: dict[str, t.Any]) -> None:
        """Warn once per field about drift in ``row``; remove the fields the schema lacks."""
        self.drift.check(row)
