"""`make bench-sync`: a 1,000,000-contact, 1,000-staff WeCom directory synced from the emulator.

The emulator runs in its own process with a generated world (every 10th contact followed by two
staff members: 1.1M relations, 2 groups of 10 per staff member, 12 corp tags); the sync pass runs
here against a fresh SQLite database, at WeCom's real per-API limit (10,000 calls a minute, which
the emulator enforces too: more is 45009). Prints seconds, pages, calls, rows/s, peak RSS, the CPU
seconds of both processes (the figure that does not depend on what else the machine runs) and the
load average; then a second pass (nothing changed: no writes).

The floor: batch/get_by_user answers at most 100 relations a call, so 1.1M relations are 11,000
calls, and at 10,000 calls a minute per API no client can read them in less than ~66 s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_SECONDS = 300.0


def serve(port: multiprocessing.Queue, staff: int, contacts: int, per_minute: int) -> None:  # type: ignore[type-arg]
    """The emulator process: generate the world, serve it until killed."""
    from channels.emulator import EmulatorConfig, WeComEmulator
    from channels.emulator.directory_world import DirectoryWorld

    started = time.perf_counter()
    world = DirectoryWorld.generate(staff=staff, contacts=contacts, groups_per_staff=2)
    emulator = WeComEmulator(EmulatorConfig(rate_limit_per_minute=per_minute)).start()
    emulator.seed_directory(world)
    port.put((emulator.url, time.perf_counter() - started, world.counts()))
    while True:
        time.sleep(3600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--staff", type=int, default=1_000)
    parser.add_argument("--calls-per-minute", type=int, default=10_000)
    parser.add_argument("--pages-per-commit", type=int, default=10)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    os.environ.update(
        SOPFLOW_DATABASE_URL=f"sqlite:///{folder / 'sopflow.db'}",
        SOPFLOW_DATA_DIR=str(folder),
        WECOM_CORP_ID="bench-corp",
        WECOM_CORP_SECRET="bench-secret",
        WECOM_CALLS_PER_MINUTE=str(args.calls_per_minute),
    )
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    emulator = multiprocessing.Process(
        target=serve, args=(queue, args.staff, args.contacts, args.calls_per_minute), daemon=True
    )
    emulator.start()
    url, generated, counts = queue.get(timeout=600)
    os.environ["WECOM_API_BASE"] = url
    print(f"emulator world generated in {generated:.1f} s: {counts}")

    from channels.wecom import WeComClient
    from core.settings import get_settings
    from engine.sync import sync_directory
    from models.db import upgrade

    upgrade()
    floor = 60.0 * (counts["relations"] / 100) / args.calls_per_minute
    print(f"rate-limit floor at {args.calls_per_minute:,} calls/min per API: ~{floor:.0f} s")
    try:
        for label in ("first pass", "second pass (nothing changed)"):
            cpu, emulator_cpu, load = _cpu_seconds(), _child_cpu(emulator.pid), os.getloadavg()
            with WeComClient.from_settings(get_settings()) as client:
                report = sync_directory(client, full=True, pages_per_commit=args.pages_per_commit)
            rows = counts["relations"]
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"{label}: {report.seconds:.1f} s, {report.pages} contact pages, "
                f"{report.groups_read} groups, {report.calls} calls, "
                f"{rows / report.seconds:,.0f} relations/s, {report.total_writes:,} rows written, "
                f"peak RSS {rss:.0f} MB (sync process)"
            )
            print(
                f"  CPU: sync {_cpu_seconds() - cpu:.1f} s, emulator "
                f"{_child_cpu(emulator.pid) - emulator_cpu:.1f} s; load average "
                f"{load[0]:.1f} before, {os.getloadavg()[0]:.1f} after (2 cores)"
            )
            print(f"  writes: {dict(report.writes)}")
            if label == "first pass":
                verdict = "within" if report.seconds <= TARGET_SECONDS else "OVER"
                print(f"  target ≤ {TARGET_SECONDS:.0f} s: {verdict}")
    finally:
        emulator.kill()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child_cpu(pid: int | None) -> float:
    """CPU seconds the emulator process has used (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
