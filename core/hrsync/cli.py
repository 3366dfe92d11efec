"""How every hrsync command line ends: ``hrsync``, ``map-hr``, each tap and target and
``hrsync-sandbox`` run their main function through :func:`run` (plugins through
:func:`plugin_main`, their console-script entry).

* **A closed pipe** (``map-hr ... | head``): the reader has all it wants. The command stops
  quietly with exit status 141 (128 + SIGPIPE, what ``cat`` reports), without a traceback
  and without Python's "Exception ignored ... BrokenPipeError" at exit.
* **A missing input or neighbour** (an input or config file that is not there, a directory
  given for a file, an executable that cannot be started): one line naming the file and the
  reason, exit status 2, no traceback. A plugin's bad option (``--input missing.jsonl``) is
  one line too, not click's usage block.
* Ctrl-C: exit status 130, no traceback.

Everything else (a bug) keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_MISSING", "plugin_main", "run"]

#: 128 + SIGPIPE: the status of a process that wrote to a pipe nobody reads any more
EXIT_BROKEN_PIPE = 141
#: an input file, config file or executable is missing
EXIT_MISSING = 2

_MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _missing(prog: str, exc: OSError) -> str:
    if exc.strerror is None:  # raised with a message of its own (singer-sdk's config files)
        return f"{prog}: {exc or type(exc).__name__}"
    reason = exc.strerror
    if exc.filename is None:
        return f"{prog}: {reason}"
    return f"{prog}: {os.fsdecode(exc.filename)}: {reason}"


def run(main: Callable[[], Any], prog: str | None = None) -> NoReturn:
    """Call ``main`` and exit with its result (an int, or 0), handling a closed pipe, a
    missing file or executable and Ctrl-C as the module says."""
    prog = prog or Path(sys.argv[0]).name
    try:
        try:
            result = main()
        except SystemExit as exc:  # click and argparse end with it
            result = exc.code
        sys.stdout.flush()  # a closed pipe shows here when the output was buffered
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(EXIT_BROKEN_PIPE)
    except _MISSING as exc:
        print(_missing(prog, exc), file=sys.stderr)
        sys.exit(EXIT_MISSING)
    except KeyboardInterrupt:
        sys.exit(130)
    if result is None:
        sys.exit(0)
    sys.exit(result)


def plugin_main(plugin: Any, prog: str) -> Callable[[], NoReturn]:
    """The console-script entry of a singer-sdk plugin class: its click CLI through
    :func:`run` (``tap-x = "tap_x.tap:main"`` with ``main = plugin_main(TapX, "tap-x")``)."""

    def invoke() -> Any:
        import click  # singer-sdk's command-line library

        try:
            return plugin.cli.main(prog_name=prog, standalone_mode=False)
        except click.ClickException as exc:  # a bad or missing option value: one line
            print(f"{prog}: {exc.format_message()}", file=sys.stderr)
            return exc.exit_code
        except click.Abort:
            print(f"{prog}: aborted", file=sys.stderr)
            return 1

    def main() -> NoReturn:
        run(invoke, prog)

    main.__doc__ = f"The {prog} command line."
    main.warm = prefork  # type: ignore[attr-defined]
    return main


def prefork(argv: list[str]) -> None:
    """Derive, in a process that forks the runs of a plugin (the webhook fast path's warm
    process; ``argv`` are the runs' arguments), what every run needs and is costly by design:
    the sealing key of ``$HRSYNC_DLQ_KEY`` (dead letters, lookup stores: a scrypt each). Nothing
    outside the process is touched."""
    from hrsync.sealing import sealer

    sealer()
