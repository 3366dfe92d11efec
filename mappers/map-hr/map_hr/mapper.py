"""map-hr: declarative HR mapping profiles, data minimisation and pseudonymisation (Singer mapper).

``MapHR`` is a singer-sdk ``InlineMapper`` (``--about``, ``--config``, ``--input``, typed
settings). Its command line reads bytes in large buffered chunks, parses each line with orjson
and runs the compiled plan of its stream; pass-through lines are copied without re-serialising.
``MapHR.listen()`` (singer-sdk's reader loop, used by in-process harnesses) runs the same engine
through the ``map_*_message`` methods.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, ClassVar

import orjson
from singer_sdk import InlineMapper
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities
from singer_sdk.plugin_base import _ConfigInput

from hrsync.errors import ConfigError, RecordError

from .engine import CONFIG_SCHEMA, READ_BUFFER, build_engine, run_stream


class _Out:
    """A message for singer-sdk's writer (listen path): serialises to the dict it holds."""

    __slots__ = ("_d",)

    def __init__(self, d: dict[str, Any]) -> None:
        self._d = d

    def to_dict(self) -> dict[str, Any]:
        return self._d


class MapHR(InlineMapper):
    """Map HR streams with a declarative profile (rename, convert, minimise, pseudonymise)."""

    name = "map-hr"
    package_name = "hrsync-map-hr"  # the distribution, for --about's version

    # map-hr does its own mapping: no SDK stream maps or flattening
    capabilities: ClassVar[list[CapabilitiesEnum]] = [
        PluginCapabilities.ABOUT,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]
    config_jsonschema = CONFIG_SCHEMA

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.engine = build_engine(self.config)
        self.profile = self.engine.profile
        self._listen_out: list[Any] = []

    # --- fast CLI path ------------------------------------------------------------------------

    def run(self, source: IO[bytes], sink: IO[bytes]) -> Counter[str]:
        """Map every line of ``source`` to ``sink`` (bytes, buffered). Returns message counts."""
        return run_stream(self.engine, source, sink)

    # --- singer-sdk listen path ---------------------------------------------------------------

    def _collect(self, message: Any) -> None:
        if isinstance(message, bytes):
            message = orjson.loads(message)
        self._listen_out.append(_Out(message))

    def _drain(self) -> list[Any]:
        out, self._listen_out = self._listen_out, []
        return out

    def map_schema_message(self, message_dict: dict) -> Iterable[Any]:
        self.engine.handle(message_dict, None, self._collect)
        return self._drain()

    def map_record_message(self, message_dict: dict) -> Iterable[Any]:
        self.engine.handle(message_dict, None, self._collect)
        return self._drain()

    def map_state_message(self, message_dict: dict) -> Iterable[Any]:
        self.engine.handle(message_dict, None, self._collect)
        return self._drain()

    def map_activate_version_message(self, message_dict: dict) -> Iterable[Any]:
        self.engine.handle(message_dict, None, self._collect)
        return self._drain()

    def map_batch_message(self, message_dict: dict) -> Iterable[Any]:
        self.engine.handle(message_dict, None, self._collect)
        return self._drain()

    def process_endofpipe(self) -> None:
        self.engine.finish(self._collect)
        for message in self._drain():
            self.write_message(message)

    # --- CLI ----------------------------------------------------------------------------------

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        file_input: IO[str] | None = None,
    ) -> None:
        if about:
            cls.print_about(about_format)
            sys.exit(0)
        cls.print_version(print_fn=cls.logger.info)
        config = config or _ConfigInput()
        try:
            mapper = cls(
                config=config.config, validate_config=True, parse_env_config=config.parse_env
            )
            if file_input is not None:
                source: IO[bytes] = Path(file_input.name).open("rb", buffering=READ_BUFFER)  # noqa: SIM115
            else:
                source = open(sys.stdin.fileno(), "rb", buffering=READ_BUFFER, closefd=False)  # noqa: SIM115
            sys.stdout.flush()
            sink = open(sys.stdout.fileno(), "wb", buffering=0, closefd=False)  # noqa: SIM115
            try:
                mapper.run(source, sink)
            finally:
                source.close()
        except (RecordError, ConfigError) as exc:
            cls.logger.error("map-hr failed: %s", exc)
            sys.exit(1)
