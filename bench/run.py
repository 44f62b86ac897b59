"""Every benchmark that gates a release, in one command (``make bench``).

    .venv/bin/python -m bench.run [--suite import,queries,pages] [--rows 100000,1000000]
                                  [--pg ADMIN_URL] [--bucket day]

Results print to the terminal and land as Markdown in ``bench/out/`` (gitignored):
``import.md``, ``queries.md`` and ``pages.md``.
"""

from __future__ import annotations

import argparse

from bench import import_bench, page_bench, query_bench

SUITES = ("import", "queries", "pages")


def parse_suites(value: str) -> list[str]:
    """``--suite``: names separated by commas, run in the order given."""
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [s for s in chosen if s not in SUITES]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(
            f"--suite takes one or more of {', '.join(SUITES)} separated by commas, "
            f"not {value!r}.")
    return chosen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    import_bench.add_arguments(parser)
    parser.add_argument("--suite", type=parse_suites, default=list(SUITES),
                        help=f"comma-separated benchmarks to run (default: {','.join(SUITES)})")
    args = parser.parse_args(argv)
    for suite in args.suite:
        if suite == "import":
            import_bench.run_from_args(args)
        elif suite == "queries":
            query_bench.run(args.rows, args.pg)
        else:
            page_bench.run(args.rows, args.pg)


if __name__ == "__main__":
    main()
