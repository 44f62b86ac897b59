"""``python -m analytics audit | purge | imports``: the Owner's trust tools from the shell.

``purge`` and ``imports delete`` only say what they would remove unless given ``--yes``; the
CLI acts as an Owner who sees every project (a shell user can read the database anyway) and
is recorded in the audit log under ``--user``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING

from analytics import exports
from analytics.access import SYSTEM, Principal
from analytics.queries import import_history
from analytics.store import get_engine

if TYPE_CHECKING:
    from analytics.retention import Removal

FORMATS = ("table", "csv", "json")
IMPORT_COLUMNS = ["id", "imported_at", "imported_by", "file_name", "format", "rows_read",
                  "rows_new", "rows_replaced", "first_day", "last_day", "total_usd"]


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    a = sub.add_parser("audit", parents=[common], help="the audit log, newest first")
    a.add_argument("--action", help="only this action (e.g. import, login.failed, data.purge)")
    a.add_argument("--limit", type=int, default=1000)
    a.add_argument("--format", choices=FORMATS, default="table")
    a.set_defaults(handler=_audit)

    p = sub.add_parser("purge", parents=[common], help="delete data older than N months")
    p.add_argument("--older-than-months", type=int, required=True, metavar="N")
    p.add_argument("--yes", action="store_true", help="really delete (else only show what)")
    p.add_argument("--user", default="cli", help="recorded in the audit log (default: cli)")
    p.set_defaults(handler=_purge)

    i = sub.add_parser("imports", parents=[common], help="list or delete imports")
    isub = i.add_subparsers(dest="imports_command", required=True)
    listing = isub.add_parser("list", parents=[common], help="imports, newest first")
    listing.add_argument("--format", choices=FORMATS, default="table")
    listing.set_defaults(handler=_imports_list)
    d = isub.add_parser("delete", parents=[common], help="delete an import and its rows")
    d.add_argument("id", type=int)
    d.add_argument("--yes", action="store_true", help="really delete (else only show what)")
    d.add_argument("--user", default="cli", help="recorded in the audit log (default: cli)")
    d.set_defaults(handler=_imports_delete)


def _acting(user: str) -> Principal:
    return dataclasses.replace(SYSTEM, username=user)




def _audit(args: argparse.Namespace) -> int:
    from analytics import audit

    exports.emit(audit.entries(get_engine(args.db), args.limit, args.action), args.format)
    return 0


def _imports_list(args: argparse.Namespace) -> int:
    exports.emit(import_history(get_engine(args.db))[IMPORT_COLUMNS], args.format, ("total_usd",))
    return 0


def _confirm_hint(what: str, removal: Removal) -> int:
    print(f"would delete {what}: {removal.usage_rows:,} usage rows and {removal.cost_rows:,} "
          "cost rows. Add --yes to delete.", file=sys.stderr)
    return 1


def _purge(args: argparse.Namespace) -> int:
    from analytics import retention

    engine, months = get_engine(args.db), args.older_than_months
    if not args.yes:
        preview = retention.purge_preview(engine, SYSTEM, months)
        return _confirm_hint(f"every day before {preview.before}", preview)
    removed = retention.purge_older_than(engine, _acting(args.user), months)
    print(f"deleted {removed.usage_rows:,} usage rows and {removed.cost_rows:,} cost rows "
          f"before {removed.before}")
    return 0


def _imports_delete(args: argparse.Namespace) -> int:
    from analytics import retention

    engine = get_engine(args.db)
    if not args.yes:
        return _confirm_hint(f"import #{args.id}",
                             retention.import_preview(engine, SYSTEM, args.id))
    removed = retention.delete_import(engine, _acting(args.user), args.id)
    print(f"deleted import #{args.id}: {removed.usage_rows:,} usage rows and "
          f"{removed.cost_rows:,} cost rows")
    return 0
