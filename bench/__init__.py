"""Benchmarks: `python -m bench.run` (make bench). Outputs land in bench/out/ (gitignored)."""
