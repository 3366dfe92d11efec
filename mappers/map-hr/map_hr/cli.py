"""The ``map-hr`` command line, fast to start.

``map-hr --config c.json [--config d.json] [--input in.jsonl]`` (how Meltano runs a mapper) is
served without importing singer-sdk, whose import alone takes ~0.6 s: the engine needs none of
it. ``map-hr --describe PROFILE...`` prints what profiles read and write as JSON
(:mod:`map_hr.describe`), also without singer-sdk. Every other invocation (``--about``,
``--version``, ``--help``, ``--config ENV``, ...) goes to singer-sdk's CLI of
:class:`map_hr.mapper.MapHR`, so the SDK conventions hold unchanged.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from hrsync.cli import prefork, run
from hrsync.errors import ConfigError, RecordError

from .engine import CONFIG_SCHEMA, READ_BUFFER, build_engine, logger, run_stream
from .engine import warm as warm_profile


def parse_fast_args(args: list[str]) -> tuple[list[str], str | None] | None:
    """(config files, input file) when the arguments need nothing from singer-sdk, else None."""
    configs: list[str] = []
    input_path: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name not in ("--config", "--input"):
            return None
        if not eq:
            if i + 1 >= len(args):
                return None
            value = args[i + 1]
            i += 1
        if name == "--config":
            if value == "ENV":
                return None
            configs.append(value)
        else:
            input_path = value
        i += 1
    return (configs, input_path) if configs else None


def load_config(paths: list[str]) -> dict[str, Any]:
    """Merge config files in order (later wins) and validate them like singer-sdk does."""
    config: dict[str, Any] = {}
    for path in paths:
        try:
            config.update(json.loads(Path(path).read_text("utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    import jsonschema

    errors = sorted(
        jsonschema.Draft7Validator(CONFIG_SCHEMA).iter_errors(config), key=lambda e: e.path
    )
    if errors:
        problems = "; ".join(
            f"{'.'.join(map(str, e.path)) or 'config'}: {e.message}" for e in errors
        )
        raise ConfigError(f"invalid map-hr config: {problems}")
    return config


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--describe"]:
        from .describe import main as describe

        sys.exit(describe(args[1:]))
    fast = parse_fast_args(args)
    if fast is None:
        from .mapper import MapHR

        MapHR.cli.main(args=args, prog_name="map-hr")
        return
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s | %(levelname)-8s | %(name)-30s | %(message)s",
    )
    configs, input_path = fast
    try:
        engine = build_engine(load_config(configs))
        if input_path is not None:
            source = Path(input_path).open("rb", buffering=READ_BUFFER)  # noqa: SIM115
        else:
            source = open(sys.stdin.fileno(), "rb", buffering=READ_BUFFER, closefd=False)  # noqa: SIM115
        sink = open(sys.stdout.fileno(), "wb", buffering=0, closefd=False)  # noqa: SIM115
        try:
            run_stream(engine, source, sink)
        finally:
            source.close()
    except (RecordError, ConfigError) as exc:
        logger.error("map-hr failed: %s", exc)
        sys.exit(1)


def console() -> None:
    """The ``map-hr`` console script: closed pipes and missing files end quietly."""
    run(main, "map-hr")


def warm(argv: list[str]) -> None:
    """Before forked runs with ``argv`` (the webhook fast path): the sealing key
    (:func:`hrsync.cli.prefork`) and the configured profile, compiled."""
    prefork(argv)
    fast = parse_fast_args(argv)
    if fast is not None:
        warm_profile(load_config(fast[0]))


console.warm = warm  # type: ignore[attr-defined]


if __name__ == "__main__":
    console()
