"""Write a large, realistic OpenAI usage export for the import benchmark.

    .venv/bin/python -m bench.gen_usage OUT.csv --rows 1000000 [--bucket day|minute] [--seed 1]

The file has the exact header and value style of the dashboard export (``demo.USAGE_HEADER``:
counts as ``10.0``, ``True``/``False``, unix seconds plus ISO twins) and the shape of a large
organisation: hundreds of API keys spread unevenly over dozens of projects, a few users per
project, several models, batch and non-default service tiers. Every row is a distinct natural
key (a real export never repeats one), so an import must keep all of them.

Rows are written one bucket at a time, so memory stays bounded however large the file; counts
come from numpy per bucket, so a million rows take a few seconds. Same seed, same file.
"""

from __future__ import annotations

import argparse
import csv
import math
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from analytics.demo import USAGE_HEADER

# (model, input tokens per request, output tokens per request, cached share, popularity)
MODELS = (
    ("gpt-5-2025-08-07", 2200, 600, 0.30, 3),
    ("gpt-5-mini-2025-08-07", 1800, 420, 0.35, 6),
    ("gpt-5-nano-2025-08-07", 900, 200, 0.20, 3),
    ("gpt-4.1-2025-04-14", 2500, 550, 0.25, 2),
    ("gpt-4.1-mini-2025-04-14", 1600, 380, 0.30, 3),
    ("gpt-4o-2024-08-06", 2000, 500, 0.30, 2),
    ("gpt-4o-mini-2024-07-18", 1100, 250, 0.30, 4),
    ("o3-2025-04-16", 3000, 1800, 0.15, 1),
)
TIERS = ("default", "default", "default", "default", "flex", "priority", "scale")
BUCKET_SECONDS = {"day": 86_400, "minute": 60}
DEFAULT_BUCKETS = {"day": 365, "minute": 7 * 1440}  # a year of days, a week of minutes
KEYS = 400
ACTIVE_SHARE = 0.7  # share of the key/model/user combinations that have usage in a bucket
_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Org:
    """The combinations (project, user, key, model, batch, tier) that can appear in a row,
    with each one's usual volume, as column arrays indexed by combination."""

    text: list[tuple[str, str, str, str, str, str]]  # project, user, key, model, batch, tier
    base_requests: np.ndarray
    input_per_request: np.ndarray
    output_per_request: np.ndarray
    cached_share: np.ndarray


def _ident(rng: np.random.Generator, prefix: str, length: int) -> str:
    return prefix + "".join(_ALNUM[i] for i in rng.integers(0, len(_ALNUM), length))


def make_org(rng: np.random.Generator, combos: int, projects: int = 40, keys: int = KEYS,
             users: int = 150) -> Org:
    """``combos`` distinct row keys over the org's projects, keys, users and models.

    Keys and users land on projects with a skew (a few projects hold most keys), as in real
    organisations; every key appears in at least one combination.
    """
    project_ids = [_ident(rng, "proj_", 24) for _ in range(projects)]
    weight = 1.0 / np.arange(1, projects + 1)
    key_project = rng.choice(projects, size=keys, p=weight / weight.sum())
    key_ids = [_ident(rng, "key_", 16) for _ in range(keys)]
    user_ids = [_ident(rng, "user-", 24) for _ in range(users)]
    project_users = [rng.choice(users, size=int(rng.integers(1, 7)), replace=False)
                     for _ in range(projects)]
    popularity = np.array([m[4] for m in MODELS], dtype=float)
    popularity /= popularity.sum()
    capacity = sum(len(project_users[p]) for p in key_project) * len(MODELS) * 2 * 4
    if combos > capacity // 2:
        raise ValueError(f"{combos} distinct rows per bucket is more than this org can hold; "
                         "use more buckets.")
    seen: set[tuple[int, int, int, bool, str]] = set()
    picked: list[tuple[int, int, int, bool, str]] = []
    while len(picked) < combos:
        key = len(picked) % keys if len(picked) < keys else int(rng.integers(keys))
        users_here = project_users[key_project[key]]
        combo = (key, int(users_here[rng.integers(len(users_here))]),
                 int(rng.choice(len(MODELS), p=popularity)), bool(rng.random() < 0.1),
                 TIERS[rng.integers(len(TIERS))])
        if combo not in seen:
            seen.add(combo)
            picked.append(combo)
    picked.sort(key=lambda c: (key_project[c[0]], c[0], c[2], c[1], c[3], c[4]))
    model_of = np.array([c[2] for c in picked])
    return Org(
        text=[(project_ids[key_project[k]], user_ids[u], key_ids[k], MODELS[m][0],
               "True" if b else "False", tier) for k, u, m, b, tier in picked],
        base_requests=rng.lognormal(2.5, 1.3, combos),
        input_per_request=np.array([MODELS[m][1] for m in model_of], dtype=float),
        output_per_request=np.array([MODELS[m][2] for m in model_of], dtype=float),
        cached_share=np.array([MODELS[m][3] for m in model_of]),
    )


def _stamp(seconds: int) -> tuple[str, str]:
    return str(seconds), datetime.fromtimestamp(seconds, UTC).isoformat()


def _bucket_rows(rng: np.random.Generator, org: Org, chosen: np.ndarray, start: int,
                 width: int, level: float) -> Iterator[list[str]]:
    """One bucket's rows: the chosen combinations with noisy, internally consistent counts."""
    requests = np.maximum(1, np.rint(org.base_requests[chosen] * level
                                     * rng.lognormal(0.0, 0.35, len(chosen)))).astype(np.int64)
    tokens_in = np.rint(requests * org.input_per_request[chosen]
                        * rng.uniform(0.6, 1.4, len(chosen))).astype(np.int64)
    tokens_out = np.rint(requests * org.output_per_request[chosen]
                         * rng.uniform(0.6, 1.4, len(chosen))).astype(np.int64)
    cached = np.rint(tokens_in * org.cached_share[chosen]
                     * rng.uniform(0.0, 1.2, len(chosen))).astype(np.int64)
    cached = np.minimum(cached, tokens_in)
    start_s, start_iso = _stamp(start)
    end_s, end_iso = _stamp(start + width)
    for i, req, tin, tout, cach in zip(chosen.tolist(), requests.tolist(), tokens_in.tolist(),
                                       tokens_out.tolist(), cached.tolist(), strict=True):
        project, user, key, model, batch, tier = org.text[i]
        unc = f"{tin - cach}.0"
        out = f"{tout}.0"
        hit = f"{cach}.0"
        yield [start_s, end_s, start_iso, end_iso, project, f"{req}.0", user, key, model, batch,
               tier, f"{tin}.0", out, hit, unc, unc, out, hit,
               "0.0", "0.0", "0.0", "0.0", "0.0", "0.0"]


def write_usage_export(path: Path, rows: int, bucket: str = "day", buckets: int | None = None,
                       seed: int = 1, end: date = date(2026, 11, 26)) -> Path:
    """Write ``rows`` usage rows spread over ``buckets`` consecutive buckets ending on ``end``.

    Volumes grow ~40% over the span and dip at weekends, so the file also serves benches that
    read the imported data back.
    """
    if bucket not in BUCKET_SECONDS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKET_SECONDS)}, not {bucket!r}.")
    if rows < 1:
        raise ValueError("rows must be at least 1.")
    width = BUCKET_SECONDS[bucket]
    buckets = buckets or DEFAULT_BUCKETS[bucket]
    per_bucket = math.ceil(rows / buckets)
    buckets = math.ceil(rows / per_bucket)
    rng = np.random.default_rng(seed)
    org = make_org(rng, max(KEYS, math.ceil(per_bucket / ACTIVE_SHARE)))
    last = int(datetime(end.year, end.month, end.day, tzinfo=UTC).timestamp())
    if bucket == "minute":
        last += 86_400 - width
    first = last - (buckets - 1) * width
    combos = len(org.text)
    path.parent.mkdir(parents=True, exist_ok=True)
    left = rows
    with path.open("w", newline="", encoding="utf-8", buffering=1 << 20) as fh:
        out = csv.writer(fh)
        out.writerow(USAGE_HEADER)
        for b in range(buckets):
            start = first + b * width
            weekday = datetime.fromtimestamp(start, UTC).weekday()
            level = (1.0 + 0.4 * b / buckets) * (0.55 if weekday >= 5 else 1.0)
            take = min(per_bucket, left)
            chosen = np.sort(rng.choice(combos, size=take, replace=False))
            out.writerows(_bucket_rows(rng, org, chosen, start, width, level))
            left -= take
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--bucket", choices=sorted(BUCKET_SECONDS), default="day")
    parser.add_argument("--buckets", type=int, default=None,
                        help="how many buckets the rows spread over (default: a year of days "
                        "or a week of minutes)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    write_usage_export(args.out, args.rows, args.bucket, args.buckets, args.seed)
    print(args.out)


if __name__ == "__main__":
    main()
