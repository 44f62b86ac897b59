"""``python -m analytics sync``: pull usage and cost from the providers' Admin APIs.

Meant for cron or a systemd timer; the admin keys come from ``OPENAI_ADMIN_KEY`` and
``ANTHROPIC_ADMIN_KEY`` (never from the command line, where ``ps`` would show them). Each run
re-fetches the last few synced days, so running it hourly or daily is safe::

    # crontab: every day at 06:15 UTC
    15 6 * * *  cd /srv/burnrate && OPENAI_ADMIN_KEY=... .venv/bin/python -m analytics sync

Exit status: 0 when every provider synced, 1 when one failed (the reason is printed, stored on
the Sync page and raised as an alert).
"""

from __future__ import annotations

import argparse
import sys

from analytics.access import SYSTEM
from analytics.cli import _day
from analytics.store import get_engine


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("sync", parents=[common],
                       help="fetch usage and cost from the providers' Admin APIs")
    # No ``choices``: listing them would load the sync code for every command. ``admin_key``
    # refuses an unknown name, naming the providers.
    p.add_argument("--provider", help="only this provider, e.g. openai (default: every "
                                      "provider with a key set)")
    p.add_argument("--since", type=_day,
                   help="first day to fetch (default: a few days before the last synced day)")
    p.add_argument("--base-url", help="the API address (a proxy or a test server); needs "
                                      "--provider")
    p.set_defaults(handler=_sync)


def _sync(args: argparse.Namespace) -> int:
    from analytics.sync import PROVIDERS, admin_key, sync_provider

    if args.base_url and not args.provider:
        raise ValueError("--base-url needs --provider: the two APIs live at different "
                         "addresses.")
    names = [args.provider] if args.provider else list(PROVIDERS)
    keys = {name: admin_key(name) for name in names}
    wanted = [n for n in names if keys[n]] if not args.provider else names
    if not wanted:
        raise ValueError("No admin key is set: export " + " or ".join(
            PROVIDERS[n].key_env for n in names) + " before running sync.")
    engine = get_engine(args.db)
    ok = True
    for name in wanted:
        result = sync_provider(engine, SYSTEM, name, keys[name], since=args.since,
                               base_url=args.base_url)
        print(result.summary(), file=sys.stdout if result.ok else sys.stderr)
        ok &= result.ok
    return 0 if ok else 1
