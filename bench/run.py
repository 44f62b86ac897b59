"""Every benchmark that gates a release, in one command (``make bench``).

    .venv/bin/python -m bench.run [--rows 100000,1000000] [--pg ADMIN_URL] [--bucket day]

Results print to the terminal and land as Markdown in ``bench/out/`` (gitignored).
"""

from __future__ import annotations

import argparse

from bench import import_bench


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    import_bench.add_arguments(parser)
    args = parser.parse_args(argv)
    import_bench.run_from_args(args)


if __name__ == "__main__":
    main()
