"""``python -m analytics export focus``: billed spend as a FOCUS 1.2 dataset for FinOps tools.

    python -m analytics export focus --start 2026-09-01 --end 2026-09-30 --format parquet \\
        --output burnrate_focus_2026-09.parquet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analytics.access import SYSTEM
from analytics.cli import _day
from analytics.store import get_engine


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("export", parents=[common], help="export data for other tools")
    esub = p.add_subparsers(dest="export", required=True)
    f = esub.add_parser("focus", parents=[common], help="billed spend as FOCUS 1.2 rows")
    f.add_argument("--start", type=_day, required=True, help="first day (inclusive)")
    f.add_argument("--end", type=_day, required=True, help="last day (inclusive)")
    f.add_argument("--format", choices=("csv", "parquet"), default="csv")
    f.add_argument("--output", default="-", help="file to write (default: standard output)")
    f.set_defaults(handler=_focus)


def _focus(args: argparse.Namespace) -> int:
    from analytics.focus import focus_csv, focus_frame, focus_parquet

    frame = focus_frame(get_engine(args.db), SYSTEM, args.start, args.end)
    data = (focus_parquet(frame) if args.format == "parquet"
            else focus_csv(frame).encode("utf-8"))
    if args.output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        Path(args.output).write_bytes(data)
        print(f"{args.output}: {len(frame):,} FOCUS rows, {args.start}..{args.end}",
              file=sys.stderr)
    return 0
