"""Which pages each role can open. A page not listed for a role is not in that user's
``st.navigation`` and so cannot be reached, not even by URL."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from analytics.access import Role

ROOT = Path(__file__).resolve().parent.parent
EVERYONE: tuple[Role, ...] = ("owner", "member", "reader")
WRITERS: tuple[Role, ...] = ("owner", "member")
OWNERS: tuple[Role, ...] = ("owner",)

# (section, file, title, icon, roles)
PAGES = (
    ("Spend", "pages/overview.py", "Overview", ":material/dashboard:", EVERYONE),
    ("Spend", "pages/explore.py", "Explore", ":material/query_stats:", EVERYONE),
    ("Plan", "pages/forecast.py", "Forecast & budgets", ":material/trending_up:", EVERYONE),
    ("Plan", "pages/allocation.py", "Allocation", ":material/pie_chart:", EVERYONE),
    ("Plan", "pages/whatif.py", "What-if pricing", ":material/calculate:", EVERYONE),
    ("Optimise", "pages/insights.py", "Insights", ":material/lightbulb:", EVERYONE),
    ("Optimise", "pages/keys.py", "API keys", ":material/key:", EVERYONE),
    ("Data", "pages/reconcile.py", "Reconcile", ":material/balance:", EVERYONE),
    ("Data", "pages/pricing.py", "Price book", ":material/sell:", EVERYONE),
    ("Data", "pages/import_data.py", "Import", ":material/upload_file:", WRITERS),
    ("Data", "pages/sync.py", "Sync", ":material/sync:", OWNERS),
    ("Admin", "pages/settings.py", "Settings", ":material/settings:", OWNERS),
    ("Admin", "pages/audit.py", "Audit log", ":material/history:", OWNERS),
)


def pages_for(role: Role) -> dict[str, list[st.Page]]:
    """The navigation sections for a role; pages whose file is absent are left out."""
    sections: dict[str, list[st.Page]] = {}
    for section, path, title, icon, roles in PAGES:
        if role in roles and (ROOT / path).exists():
            sections.setdefault(section, []).append(
                st.Page(path, title=title, icon=icon, default=path == "pages/overview.py"))
    return sections
