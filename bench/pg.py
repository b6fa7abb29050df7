"""`make bench-pg`: one 1:1 occurrence on PostgreSQL worked by 1, 2 (…) runner processes, and once with a runner killed mid-occurrence.

Each run is a fresh occurrence (the next day) of the bench SOP over the same demo world, against
the emulator (as a separate process) and a Prefect server on the same PostgreSQL server. The
occurrence's run (the coordinator) is a process of its own, and so is each extra runner: every
process's peak RSS is its own. 1 worker is today's one-process path (SOPFLOW_OCCURRENCE_WORKERS=1);
with N the coordinator partitions the occurrence and N-1 runner processes follow it, as runs of
the `sopflow-partition-runner` deployment would. Duplicates and lost touches are counted from the
emulator's own log and the Delivery table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import BIN, configure, emulator_process, peak_rss_mb  # noqa: E402

SOP, STEP = "bench-touch", "touch"
BASE_DAY = dt.date(2026, 12, 7)
KILL_LEASE_SECONDS = "15"  # the kill run's lease: how long the others wait before taking over


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2, help="most runner processes (1, 2, 4 …)")
    parser.add_argument("--no-kill", action="store_true", help="skip the kill-one-worker run")
    parser.add_argument(
        "--batch-size", type=int, help="recipients per partition (default: a tenth, ≤ 100,000)"
    )
    parser.add_argument("--pg-url", help="an existing PostgreSQL server (default: a local one)")
    parser.add_argument(
        "--coordinator", nargs=2, metavar=("WORKERS", "DAY"), help=argparse.SUPPRESS
    )
    parser.add_argument("--runner", metavar="DAY", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.coordinator:
        return coordinate(int(args.coordinator[0]), dt.date.fromisoformat(args.coordinator[1]))
    if args.runner:
        return follow(dt.date.fromisoformat(args.runner))
    return bench(args)


def bench(args: argparse.Namespace) -> int:
    from sopflow.pg_local import create_database, postgres_server

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="sopflow-bench-pg-") as tmp:
        server = args.pg_url or stack.enter_context(postgres_server())
        url = create_database(server, "sopflow_bench")
        prefect_db = create_database(server, "prefect_bench").replace("+psycopg2", "+asyncpg")
        started = time.perf_counter()
        env = dict(os.environ, SOPFLOW_DATABASE_URL=url)
        demo = [str(BIN / "sopflow"), "demo-data", "--customers", str(args.customers)]
        subprocess.run(demo, env=env, check=True, stdout=subprocess.DEVNULL)
        print(
            f"demo world on PostgreSQL: {args.customers:,} customers in {time.perf_counter() - started:.0f} s"
        )
        sop_dir = Path(tmp) / "sop"
        sop_dir.mkdir()
        shutil.copy(ROOT / "bench" / "bench_sop.md", sop_dir / "bench-touch.md")
        base = stack.enter_context(emulator_process())
        configure(url, sop_dir, base)
        # A run a day for the same customers: caps would skip the later runs' touches.
        os.environ.update(SOPFLOW_CAP_CUSTOMER_DAY="10", SOPFLOW_CAP_CUSTOMER_30D="100")
        batch = args.batch_size or min(100_000, max(1_000, args.customers // 10))
        os.environ["SOPFLOW_BATCH_SIZE"] = str(batch)
        from orchestration.quiet_server import quiet_server

        stack.enter_context(quiet_server(report=None, database_url=prefect_db))
        counts = [n for n in (1, 2, 4, 8, 16) if n <= args.workers]
        runs = [run(n, BASE_DAY + dt.timedelta(days=i), base) for i, n in enumerate(counts)]
        if not args.no_kill:
            runs.append(run(2, BASE_DAY + dt.timedelta(days=len(runs)), base, kill=True))
        report(runs, url)
    return 0


def spawn(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *args],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def last_json(process: subprocess.Popen[str]) -> dict:  # type: ignore[type-arg]
    out, _ = process.communicate()
    lines = [line for line in (out or "").splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def run(workers: int, day: dt.date, base: str, *, kill: bool = False) -> dict:  # type: ignore[type-arg]
    """One occurrence with `workers` processes; what it measured."""
    requests.post(f"{base}/emulator/reset", timeout=60)
    env = dict(os.environ, SOPFLOW_OCCURRENCE_WORKERS=str(workers))
    if kill:
        env["SOPFLOW_PARTITION_LEASE_SECONDS"] = KILL_LEASE_SECONDS
    cpu_before = cpu_ticks()
    runners = [spawn("--runner", day.isoformat(), env=env) for _ in range(workers - 1)]
    coordinator = spawn("--coordinator", str(workers), day.isoformat(), env=env)
    killed: list[str] = []
    if kill:
        threading.Thread(target=kill_mid_occurrence, args=(runners[0], day, killed)).start()
    measured = last_json(coordinator)
    measured["runner_rss"] = [last_json(r).get("rss_mb") for r in runners]
    measured["cores_busy"] = cores_busy(cpu_before, cpu_ticks())
    measured.update(workers=workers, day=day.isoformat(), killed=killed)
    measured.update(check(day, base))
    print(
        f"  {workers} worker(s){' (one killed)' if kill else ''}: {measured['wall']:.1f} s, "
        f"{measured['recipients'] / measured['wall']:,.0f} rows/s, duplicates {measured['duplicates']}, "
        f"lost {measured['lost']}",
        flush=True,
    )
    return measured


def cpu_ticks() -> tuple[int, int] | None:
    """The machine's (busy, total) CPU ticks so far, from Linux's /proc/stat (None elsewhere)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cores_busy(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """How many of the machine's cores were busy on average between two `cpu_ticks` (every
    process: the workers, PostgreSQL, the Prefect server and the emulator)."""
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1]) * (os.cpu_count() or 1)


def kill_mid_occurrence(victim: subprocess.Popen[str], day: dt.date, killed: list[str]) -> None:
    """SIGKILL the runner once it has finished a partition and holds another."""
    from sqlalchemy import text

    from models.db import session_scope

    mine = f"%:{victim.pid}:%"
    query = text(
        "SELECT count(*) FILTER (WHERE p.state = 'done'), count(*) FILTER (WHERE p.state = "
        "'leased') FROM occurrence_partition p JOIN occurrence_work w ON w.id = p.work_id "
        "WHERE w.occurrence = :day AND p.owner LIKE :mine"
    )
    while victim.poll() is None:
        with session_scope(readonly=True) as session:
            done, held = session.execute(query, {"day": day.isoformat(), "mine": mine}).one()
        if done and held:
            victim.send_signal(signal.SIGKILL)
            killed.append(f"runner {victim.pid} after {done} partition(s), holding {held}")
            return
        time.sleep(0.2)


def check(day: dt.date, base: str) -> dict:  # type: ignore[type-arg]
    """Duplicates by the emulator's log; lost: rows left unsent, or sent but not in the log."""
    from sqlalchemy import text

    from models.db import session_scope

    state = requests.get(f"{base}/emulator/state", timeout=600).json()
    targets = Counter(t for m in state["messages"] for t in m["targets"])
    with session_scope(readonly=True) as session:
        by_status = dict(
            session.execute(
                text(
                    "SELECT status, count(*) FROM delivery WHERE sop_id = :sop AND step = :step "
                    "AND occurrence = :day GROUP BY status"
                ),
                {"sop": SOP, "step": STEP, "day": day.isoformat()},
            ).all()
        )
    unsent = sum(by_status.get(s, 0) for s in ("planned", "sending", "failed", "unknown"))
    return {
        "duplicates": sum(n - 1 for n in targets.values() if n > 1),
        "lost": unsent + max(0, by_status.get("sent", 0) - len(targets)),
        "calls": len(state["messages"]),
        "by_status": by_status,
    }


def coordinate(workers: int, day: dt.date) -> int:
    """The occurrence's own run (a process of its own); prints what it measured as JSON."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from core.clock import at_local
    from engine import timing
    from flows.customers import customer_sop

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        timing.reset()
        started = time.perf_counter()
        summary = customer_sop(sop_id=SOP, step=STEP, day=day, now=at_local(day, 10, 0))
        wall = time.perf_counter() - started
    result = {
        "wall": wall,
        "recipients": summary["recipients"],
        "stages": timing.spent() if workers == 1 else phases(day),
        "rss_mb": peak_rss_mb(),
    }
    print(json.dumps(result, default=str), flush=True)
    return 0


def phases(day: dt.date) -> dict[str, float]:
    """Wall seconds of the partitioned phases, from the partitions' rows (all processes)."""
    from sqlalchemy import text

    from models.db import session_scope

    with session_scope(readonly=True) as session:
        rows = session.execute(
            text(
                "SELECT p.kind, min(w.created_at), max(p.updated_at) FROM occurrence_partition p "
                "JOIN occurrence_work w ON w.id = p.work_id WHERE w.occurrence = :day "
                "GROUP BY p.kind"
            ),
            {"day": day.isoformat()},
        ).all()
    ends = {kind: last for kind, _, last in rows}
    created = min(first for _, first, _ in rows)
    out = {"prepare (wall)": (ends["prepare"] - created).total_seconds()}
    if "dispatch" in ends:
        out["dispatch (wall)"] = (ends["dispatch"] - ends["prepare"]).total_seconds()
    return out


def follow(day: dt.date) -> int:
    """An extra runner: waits for the occurrence's work, works its prepare partitions, then its
    dispatch partitions once the coordinator opens them; prints its peak RSS as JSON."""
    from engine.partitions import settled
    from flows.partition_runner import partition_runner
    from models.db import session_scope
    from models.partitions import DISPATCH, DONE, PREPARE, open_work

    def work() -> tuple[int, str] | None:
        with session_scope(readonly=True) as session:
            found = open_work(SOP, STEP, day.isoformat(), session=session)
            return (int(found.id or 0), found.phase) if found else None

    found = None
    while found is None:
        time.sleep(0.2)
        found = work()
    work_id, finished = found[0], 0
    finished += partition_runner(work_id, PREPARE)
    while (now := work()) is not None and now[1] == PREPARE:
        time.sleep(0.2)
    if now is not None and now[1] != DONE and not settled(work_id, DISPATCH):
        finished += partition_runner(work_id, DISPATCH)
    print(json.dumps({"rss_mb": peak_rss_mb(), "partitions": finished}), flush=True)
    return 0


def report(runs: list[dict], url: str) -> None:  # type: ignore[type-arg]
    """The figures: per run, per stage, speed-up per added worker, RSS; bytes per Delivery row."""
    from sqlalchemy import create_engine

    one = next((r for r in runs if r["workers"] == 1 and not r["killed"]), runs[0])
    rate_one = one["recipients"] / one["wall"]
    print(f"\n1:1 occurrence on PostgreSQL to {one['recipients']:,} customers")
    for r in runs:
        rate = r["recipients"] / r["wall"]
        label = f"{r['workers']} worker(s)" + (" — one killed" if r["killed"] else "")
        print(f"\n  {label}")
        print(
            f"    end to end          {r['wall']:8.1f} s   ({rate:,.0f} rows/s, ×{rate / rate_one:.2f} of one worker)"
        )
        for stage, seconds in r["stages"].items():
            print(f"    {stage:<19} {seconds:8.1f} s")
        if r.get("cores_busy") is not None:
            print(f"    machine CPU busy    {r['cores_busy']:8.2f} of {os.cpu_count()} cores")
        rss = ", ".join(f"{x:.0f}" for x in r["runner_rss"] if x) or "-"
        print(f"    peak RSS            {r['rss_mb']:8.0f} MB coordinator; runners: {rss} MB")
        print(f"    WeCom calls         {r['calls']:8d}   rows by status: {r['by_status']}")
        print(f"    duplicates {r['duplicates']} (by the emulator's log), lost {r['lost']}")
        for note in r["killed"]:
            print(f"    killed: {note}")
    engine = create_engine(url)
    with engine.connect() as conn:
        size, rows = conn.exec_driver_sql(
            "SELECT pg_total_relation_size('delivery'), (SELECT count(*) FROM delivery)"
        ).one()
    engine.dispose()
    print(
        f"\n  Delivery: {rows:,} rows, {size / 2**20:,.0f} MB with indexes = {size / max(rows, 1):,.0f} bytes a row"
    )
    ok = all(r["duplicates"] == 0 and r["lost"] == 0 for r in runs)
    print(f"  [{'ok' if ok else 'MISSED'}] 0 duplicates and 0 lost in every run")


if __name__ == "__main__":
    sys.exit(main())
