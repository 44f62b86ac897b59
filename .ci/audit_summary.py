"""Summarise a pip-audit JSON report: how many pinned packages were really audited, and
fail only on known vulnerabilities (an unreachable service is reported, not hidden)."""

from __future__ import annotations

import json
import sys


def main(path: str) -> int:
    try:
        deps = json.load(open(path))["dependencies"]
    except (OSError, ValueError, KeyError):
        print(f"pip-audit: no report at {path}: the audit did not run")
        return 0
    audited = sum("skip_reason" not in d for d in deps)
    vulns = [(d["name"], v["id"]) for d in deps for v in d.get("vulns", [])]
    note = "" if audited else " (vulnerability service unreachable: NOT audited)"
    print(f"pip-audit: {audited} of {len(deps)} pinned packages audited, "
          f"{len(vulns)} known vulnerabilities{note}")
    for name, vid in vulns:
        print(f"  {name}: {vid}")
    return 1 if vulns else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
