"""Benchmark: load the demo world into a fresh SQLite file and print the time and row counts."""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo import load_demo_world  # noqa: E402
from models import db  # noqa: E402

BUDGET_SECONDS = 120.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", type=Path, help="write the database here instead of a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sopflow-bench-") as tmp:
        path = args.keep or Path(tmp) / "demo.db"
        path.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
        started = time.perf_counter()
        db.upgrade(url)
        migrated = time.perf_counter()
        print(f"schema upgraded in {migrated - started:.1f}s", flush=True)

        def progress(message: str) -> None:
            print(f"{time.perf_counter() - migrated:7.1f}s  {message}", flush=True)

        counts = load_demo_world(url, customers=args.customers, seed=args.seed, progress=progress)
        loaded = time.perf_counter() - migrated
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print()
        for table, rows in sorted(counts.items(), key=lambda item: -item[1]):
            print(f"{table:>18} {rows:>12,}")
        print(f"{'total rows':>18} {sum(counts.values()):>12,}")
        print(
            f"load time {loaded:.1f}s (budget {BUDGET_SECONDS:.0f}s), peak RSS {peak_mib:,.0f} MiB"
        )
        print(f"database file {path.stat().st_size / 2**20:,.0f} MiB")
        return 0 if loaded < BUDGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
