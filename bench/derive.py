"""`make bench-derive`: the nightly derivation (tiers + automatic tags + stages) for 1,000,000
customers of the demo world, with the shipped sop/tiers.yaml and sop/tags.yaml; figures printed.

The world is loaded once by `sopflow demo-data` (a subprocess) into --db and reused; each run works
on a copy, so every run starts from the freshly loaded world. A second derivation on the same copy
shows what a quiet night costs (nothing changes).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
BUDGET_SECONDS = 30.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def world(db: Path, customers: int) -> None:
    """The demo world in `db`, loaded unless it is already there."""
    if db.exists():
        return
    started = time.perf_counter()
    partial = db.with_suffix(".partial.db")  # an interrupted load is never taken for a world
    partial.unlink(missing_ok=True)
    env = dict(os.environ, SOPFLOW_DATABASE_URL=f"sqlite:///{partial}")
    subprocess.run(
        [str(BIN / "sopflow"), "demo-data", "--customers", str(customers)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    partial.rename(db)
    print(f"demo world: {customers:,} customers loaded in {time.perf_counter() - started:.1f} s")


def derive_once(url: str) -> dict[str, float]:
    """One nightly pass (derive, then classify) in one transaction each, timed per stage (wall
    seconds; CPU seconds under `cpu …`, which say more than wall time on a shared machine)."""
    from core.clock import utcnow
    from core.settings import get_settings
    from engine.derive import derive_customers
    from engine.stages import classify_stages
    from models.db import session_scope
    from soplang.derive_files import load_tiers
    from soplang.tag_rules import load_tag_rules

    sop = get_settings().sop_dir
    tiers, rules = load_tiers(sop), load_tag_rules(sop)
    now = utcnow()
    times: dict[str, float] = {}
    started, cpu = time.perf_counter(), time.process_time()
    with session_scope(url) as session:
        derived = derive_customers(now, session=session, tiers=tiers, rules=rules)
    times["tiers + tags"] = time.perf_counter() - started
    times["cpu tiers + tags"] = time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    with session_scope(url) as session:
        classified = classify_stages(now, session=session)
    times["stages"] = time.perf_counter() - started
    times["cpu stages"] = time.process_time() - cpu
    print(f"  tier changes {derived.tier_moves:,}; tags added {derived.added}, removed "
          f"{derived.removed}; stage changes {classified.moved:,}")  # fmt: skip
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="the demo world's SQLite file (made when absent)")
    args = parser.parse_args()
    cache = args.db or ROOT / ".data" / f"bench-derive-{args.customers}.db"
    cache.parent.mkdir(parents=True, exist_ok=True)
    world(cache, args.customers)
    with tempfile.TemporaryDirectory(prefix="sopflow-derive-") as tmp:
        db = Path(shutil.copyfile(cache, Path(tmp) / "world.db"))
        url = f"sqlite:///{db}"
        os.environ["SOPFLOW_DATABASE_URL"] = url
        from models import db as models_db

        models_db.upgrade(url)
        print(f"first night ({args.customers:,} customers):")
        first = derive_once(url)
        print("second night (nothing changed):")
        second = derive_once(url)
    total = sum(v for k, v in first.items() if not k.startswith("cpu"))
    cpu = sum(v for k, v in first.items() if k.startswith("cpu"))
    for stage, seconds in first.items():
        print(f"{stage:>16} {seconds:7.1f} s   (again: {second[stage]:.1f} s)")
    print(f"{'total':>16} {total:7.1f} s   (budget {BUDGET_SECONDS:.0f} s), "
          f"{args.customers / total:,.0f} customers/s, peak RSS {peak_rss_mb():,.0f} MiB")  # fmt: skip
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{'cpu total':>16} {cpu:7.1f} s   (load average {load} on {os.cpu_count()} cores)")
    return 0 if total <= BUDGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
