"""``python -m analytics insights`` and ``keys list|note|checklist``: the Insights and API
keys pages from the shell, acting on the whole store."""

from __future__ import annotations

import argparse
import json
import sys

from analytics import exports
from analytics.access import SYSTEM, Principal
from analytics.cli import _day
from analytics.store import get_engine

_FORMATS = ("table", "csv", "json")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("insights", parents=[common],
                       help="savings and problems found in usage, ranked by $/month")
    p.add_argument("--start", type=_day, help="first day analysed (default: 90 days before end)")
    p.add_argument("--end", type=_day, help="last day analysed (default: newest data)")
    p.add_argument("--format", choices=_FORMATS, default="table")
    p.set_defaults(handler=_insights)

    k = sub.add_parser("keys", parents=[common], help="API key inventory and notes")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    ls = ksub.add_parser("list", parents=[common], help="every key seen, stale ones flagged")
    ls.add_argument("--format", choices=_FORMATS, default="table")
    ls.add_argument("--stale", action="store_true", help="only keys unused for 30+ days")
    ls.set_defaults(handler=_keys_list)
    note = ksub.add_parser("note", parents=[common], help="note a key's owner and service")
    note.add_argument("key", help="the API key id, e.g. key_abc123")
    note.add_argument("--owner", default="")
    note.add_argument("--service", default="")
    note.add_argument("--note", default="")
    note.add_argument("--provider", default="openai")
    note.add_argument("--user", default="cli", help="recorded as the note's writer")
    note.set_defaults(handler=_keys_note)
    check = ksub.add_parser("checklist", parents=[common], help="steps to rotate a key")
    check.add_argument("key")
    check.add_argument("--provider", default="openai")
    check.set_defaults(handler=_keys_checklist)




def _insights(args: argparse.Namespace) -> int:
    from analytics.insights import find_insights, findings_frame, report_dict

    report = find_insights(get_engine(args.db), SYSTEM, args.start, args.end)
    if report is None:
        print("No data in the store yet: import usage exports first.", file=sys.stderr)
        return 0
    if args.format == "json":
        print(json.dumps(report_dict(report), indent=2))
        return 0
    frame = findings_frame(report)
    if args.format == "csv":
        sys.stdout.write(exports.to_csv(frame))
        return 0
    print(f"Insights for {report.start}..{report.end} ({report.days} days), "
          f"{len(frame)} finding(s), $/month at list price:")
    print(exports.to_table(frame[["monthly_usd", "kind", "project", "api_key", "model",
                                  "window", "title"]], money=("monthly_usd",)))
    for note in report.notes:
        print(f"note: {note}")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    from analytics.keys import key_inventory

    frame = key_inventory(get_engine(args.db), SYSTEM)
    if args.stale:
        frame = frame[frame["stale"]]
    if args.format == "table":
        frame = frame[["api_key_id", "project", "first_seen", "last_seen", "days_idle",
                       "spend_30d_usd", "owner", "service", "stale"]]
    exports.emit(frame, args.format, ("spend_30d_usd",))
    return 0


def _keys_note(args: argparse.Namespace) -> int:
    from analytics.keys import add_note

    writer = Principal(args.user, "owner", None)
    add_note(get_engine(args.db), writer, args.key, args.owner, args.service, args.note,
             args.provider)
    print(f"noted {args.key}")
    return 0


def _keys_checklist(args: argparse.Namespace) -> int:
    from analytics.keys import rotation_checklist

    steps = rotation_checklist(get_engine(args.db), SYSTEM, args.key, args.provider)
    for row in steps.itertuples(index=False):
        print(f"{row.step}. {row.action} — {row.detail}")
    return 0
