"""``hrsync dlq list|show|replay|discard``: the dead-letter store, for an operator.

``list`` and ``show`` print summaries (integration, plugin, stream, record key, error,
attempts); the record itself only with ``show --record``. ``replay`` pipes the waiting letters
back through the target that gave up on them: per (integration, plugin), the stored SCHEMA
(with its key properties) and RECORD messages go to ``meltano invoke <plugin>`` (cwd = the
project root, ``HRSYNC_INTEGRATION`` = the letter's integration, ``HRSYNC_REPLAY=1``), or to
``--command`` / ``$HRSYNC_REPLAY_COMMAND`` (``{plugin}`` is replaced) on installs without
Meltano. The target resolves what it delivers; a record that fails again stays waiting with
one more attempt. Targets upsert on their record keys, so a replay never doubles a record.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from hrsync.deadletter import DEFAULT_PATH as DLQ_DEFAULT
from hrsync.deadletter import ENV_PATH, REPLAY_ENV, DeadLetter, DeadLetterStore
from hrsync_ops.ops import meltano_command, project_root, under_root

ENV_COMMAND = "HRSYNC_REPLAY_COMMAND"
STATUSES = ("waiting", "delivered", "discarded", "all")


def register(sub: Any) -> None:
    dlq = sub.add_parser("dlq", help="dead letters: list, show, replay, discard")
    dlq.add_argument("--path", type=Path, help=f"default: ${ENV_PATH} or {DLQ_DEFAULT}")
    dlq.add_argument("--project-root", type=Path, help="default: nearest dir with meltano.yml")
    verbs = dlq.add_subparsers(dest="verb", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def filters(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--integration", help="only this job / integration")
        parser.add_argument("--plugin", help="only this target (Meltano plugin name)")

    listing = verbs.add_parser("list", help="summaries of the letters (never the records)")
    filters(listing)
    listing.add_argument("--status", choices=STATUSES, default="waiting")
    common(listing)
    listing.set_defaults(func=cmd_list)

    show = verbs.add_parser("show", help="one letter; its record only with --record")
    show.add_argument("id", type=int)
    show.add_argument("--record", action="store_true", help="also print the record and schema")
    common(show)
    show.set_defaults(func=cmd_show)

    replay = verbs.add_parser("replay", help="send waiting letters through their target again")
    filters(replay)
    replay.add_argument("--id", type=int, action="append", dest="ids", help="only these ids")
    replay.add_argument(
        "--command",
        help="target command instead of `meltano invoke {plugin}` (also $HRSYNC_REPLAY_COMMAND)",
    )
    replay.add_argument("--dry-run", action="store_true", help="say what would be replayed")
    common(replay)
    replay.set_defaults(func=cmd_replay)

    discard = verbs.add_parser("discard", help="give up on a waiting letter, saying why")
    discard.add_argument("ids", type=int, nargs="+")
    discard.add_argument("--reason", required=True, help="kept with the letter")
    common(discard)
    discard.set_defaults(func=cmd_discard)


def _store(args: argparse.Namespace) -> tuple[DeadLetterStore, Path]:
    root = (args.project_root or project_root()).resolve()
    path = args.path or under_root(root, ENV_PATH, DLQ_DEFAULT)
    return DeadLetterStore(path), root


def _print_table(letters: list[DeadLetter]) -> None:
    if not letters:
        print("no dead letters")
        return
    print(
        f"{'id':>5} {'integration':<18} {'plugin':<16} {'stream':<18} {'record':<14} "
        f"{'tries':>5} {'status':<9} {'class':<24} error"
    )
    for x in letters:
        print(
            f"{x.id:>5} {x.integration[:18]:<18} {x.plugin[:16]:<16} {x.stream[:18]:<18} "
            f"{x.record_key[:14]:<14} {x.attempts:>5} {x.status:<9} {x.error_class[:24]:<24} "
            f"{x.error[:100]}"
        )


def cmd_list(args: argparse.Namespace) -> int:
    store, _ = _store(args)
    status = None if args.status == "all" else args.status
    letters = store.list(status=status, integration=args.integration, plugin=args.plugin)
    if args.json:
        print(json.dumps([x.summary() for x in letters], indent=2, ensure_ascii=False))
    else:
        _print_table(letters)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store, _ = _store(args)
    letter = store.get(args.id)
    if letter is None:
        print(f"hrsync dlq: no dead letter {args.id}", file=sys.stderr)
        return 1
    doc = letter.summary()
    if args.record:
        if letter.record is None:
            print(
                "hrsync dlq: the record is encrypted and $HRSYNC_DLQ_KEY is unset or wrong",
                file=sys.stderr,
            )
        doc |= {
            "record": letter.record,
            "schema": letter.schema,
            "key_properties": letter.key_properties,
        }
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        for key, value in doc.items():
            shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value
            print(f"{key:>16}: {shown}")
    return 0


def cmd_discard(args: argparse.Namespace) -> int:
    store, _ = _store(args)
    done = {i: store.discard(i, args.reason) for i in args.ids}
    if args.json:
        print(json.dumps({str(i): ok for i, ok in done.items()}))
    for i, ok in done.items():
        if not ok:
            print(f"hrsync dlq: letter {i} is not waiting (unknown or already closed)",
                  file=sys.stderr)  # fmt: skip
    return 0 if all(done.values()) else 1


# --- replay ----------------------------------------------------------------------------------


def singer_messages(letters: Iterable[DeadLetter]) -> Iterator[dict[str, Any]]:
    """SCHEMA (again whenever a stream's schema differs) then RECORD, per letter."""
    sent: dict[str, str] = {}
    for letter in letters:
        if letter.record is None or letter.schema is None:
            continue
        fingerprint = json.dumps([letter.schema, letter.key_properties], sort_keys=True)
        if sent.get(letter.stream) != fingerprint:
            sent[letter.stream] = fingerprint
            yield {
                "type": "SCHEMA",
                "stream": letter.stream,
                "schema": letter.schema,
                "key_properties": letter.key_properties,
            }
        yield {"type": "RECORD", "stream": letter.stream, "record": letter.record}


def _command(template: str | None, plugin: str) -> list[str]:
    template = template or os.environ.get(ENV_COMMAND)
    if template:
        return [part.replace("{plugin}", plugin) for part in shlex.split(template)]
    return [*meltano_command(), "invoke", plugin]


def cmd_replay(args: argparse.Namespace) -> int:
    store, root = _store(args)
    waiting = store.list(integration=args.integration, plugin=args.plugin)
    if args.ids:
        waiting = [x for x in waiting if x.id in set(args.ids)]
    groups: dict[tuple[str, str], list[DeadLetter]] = {}
    for letter in waiting:
        groups.setdefault((letter.integration, letter.plugin), []).append(letter)
    report: list[dict[str, Any]] = []
    for (integration, plugin), letters in groups.items():
        sealed = [x.id for x in letters if x.record is None]
        # a mapper's letter (no schema): fixed in the source system, resolved by the next run
        at_source = [x.id for x in letters if x.record is not None and x.schema is None]
        sendable = [x for x in letters if x.record is not None and x.schema is not None]
        command = _command(args.command, plugin)
        entry: dict[str, Any] = {
            "integration": integration,
            "plugin": plugin,
            "command": command,
            "sent": [x.id for x in sendable],
            "unreadable": sealed,  # encrypted, and no (or the wrong) key
            "fix_at_source": at_source,
        }
        if sendable and not args.dry_run:
            text = "".join(
                json.dumps(m, ensure_ascii=False) + "\n" for m in singer_messages(sendable)
            )
            env = {**os.environ, "HRSYNC_INTEGRATION": integration, REPLAY_ENV: "1"}
            env[ENV_PATH] = str(store.path.resolve())
            try:
                proc = subprocess.run(
                    command, input=text, text=True, cwd=root, env=env, capture_output=True
                )
            except OSError as exc:  # no such command: nothing was sent, all still wait
                entry["exit_code"], entry["stderr_tail"] = 127, f"cannot start {command[0]}: {exc}"
            else:
                entry["exit_code"] = proc.returncode
                if proc.returncode != 0:
                    entry["stderr_tail"] = proc.stderr[-2000:]
        after = {x.id: x for x in store.list(status=None, integration=integration, plugin=plugin)}
        entry["delivered"] = [i for i in entry["sent"] if after[i].status == "delivered"]
        entry["still_waiting"] = [x.id for x in letters if after[x.id].status == "waiting"]
        report.append(entry)
    remaining = sum(len(e["still_waiting"]) for e in report)
    if args.json:
        print(json.dumps({"replayed": report, "still_waiting": remaining}, indent=2))
    else:
        if not report:
            print("no waiting dead letters to replay")
        for e in report:
            verb = "would send" if args.dry_run else "sent"
            print(
                f"{e['integration']} / {e['plugin']}: {verb} {len(e['sent'])}, "
                f"delivered {len(e['delivered'])}, still waiting {len(e['still_waiting'])}"
                + (f" (exit {e['exit_code']})" if e.get("exit_code") else "")
            )
            if e.get("stderr_tail"):
                print(e["stderr_tail"], file=sys.stderr)
            if e["unreadable"]:
                print(f"  encrypted, not readable with this key: {e['unreadable']}")
            if e["fix_at_source"]:
                print(
                    f"  not replayable, the mapping refused them: {e['fix_at_source']} (correct "
                    "the source record; the next run that maps it resolves the letter)"
                )
        if remaining and not args.dry_run:
            print(f"{remaining} letter(s) still waiting: `hrsync dlq list` shows their errors")
    return 0 if args.dry_run or remaining == 0 else 1
