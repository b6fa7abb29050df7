"""`make bench`: 1,000,000 customers, one 1:1 occurrence to all of them against the emulator; figures printed.

Stages: load the demo world (a subprocess, not counted in the occurrence's memory) → run the
occurrence through the real Prefect engine → re-run it (must send 0) → the raw floor (plain
executemany of the same Delivery rows + plain Jinja2 renders) → the naive way for 10,000
recipients (one Prefect task run per message).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
TARGETS = {
    "end to end (s)": 60.0,
    "peak RSS (MB)": 1024.0,
    "x raw floor": 3.0,
    "re-run share": 0.10,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare(args: argparse.Namespace, workdir: Path) -> tuple[str, Path]:
    """The database (loaded by `sopflow demo-data` unless --db holds one) and the SOP folder."""
    db = args.db or workdir / "bench.db"
    url = f"sqlite:///{db}"
    if not db.exists():
        started = time.perf_counter()
        env = dict(os.environ, SOPFLOW_DATABASE_URL=url)
        subprocess.run(
            [str(BIN / "sopflow"), "demo-data", "--customers", str(args.customers)],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(
            f"demo world: {args.customers:,} customers loaded in {time.perf_counter() - started:.1f} s"
        )
    sop_dir = workdir / "sop"
    sop_dir.mkdir(exist_ok=True)
    # --attachments: the same text with a photo and a mini-program card (uploaded as media).
    source = "bench_sop_attachments.md" if args.attachments else "bench_sop.md"
    shutil.copy(ROOT / "bench" / source, sop_dir / "bench-touch.md")
    if args.attachments:
        shutil.copytree(ROOT / "sop" / "media", sop_dir / "media", dirs_exist_ok=True)
    return url, sop_dir


def configure(url: str, sop_dir: Path, emulator_url: str) -> None:
    os.environ.update(
        SOPFLOW_DATABASE_URL=url,
        SOPFLOW_SOP_DIR=str(sop_dir),
        SOPFLOW_CHANNEL="wecom",
        WECOM_API_BASE=emulator_url,
        WECOM_CORP_ID="bench",
        WECOM_CORP_SECRET="bench-secret",
        PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL="WARNING",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # The emulator has no call limit here: measure sopflow, not WeCom's 10,000 calls a minute.
        WECOM_CALLS_PER_MINUTE="1000000",
        WECOM_CALL_SLOTS="4",  # as many as the flow's dispatch threads
    )


def task_runs_of(flow_run_id: object) -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        response = client._client.post(
            "/task_runs/count", json={"flow_runs": {"id": {"any_": [str(flow_run_id)]}}}
        )
        return int(response.json())


def run_occurrence(day: dt.date, now: dt.datetime) -> tuple[float, object, dict]:
    from flows.customers import customer_sop

    started = time.perf_counter()
    state = customer_sop(sop_id="bench-touch", step="touch", day=day, now=now, return_state=True)
    wall = time.perf_counter() - started
    return wall, state.state_details.flow_run_id, state.result()


def raw_floor(url: str, workdir: Path, day: dt.date) -> tuple[float, float, int]:
    """Plain executemany of the same Delivery rows into SQLite, and plain Jinja2 renders of the texts."""
    import jinja2

    source = (ROOT / "bench" / "bench_sop.md").read_text(encoding="utf-8").split("## touch\n", 1)[1]
    with sqlite3.connect(url.split(":///", 1)[1]) as source_db:
        customers = source_db.execute(
            "SELECT c.id, c.external_userid, c.region, c.tier, s.userid FROM customer c LEFT JOIN staff s ON s.id = c.owner_staff_id"
        ).fetchall()
    labels = {"bronze": "青铜", "silver": "白银", "gold": "黄金", "platinum": "铂金"}
    started = time.perf_counter()
    template = jinja2.Template(source)
    texts = [
        template.render(customer={"region": r, "tier_label": labels[t]})
        for _, _, r, t, _ in customers
    ]
    render_seconds = time.perf_counter() - started
    floor_db = sqlite3.connect(workdir / "floor.db")
    floor_db.execute("PRAGMA journal_mode=WAL")
    floor_db.execute(
        "CREATE TABLE delivery (id INTEGER PRIMARY KEY, idempotency_key TEXT UNIQUE, sop_id TEXT, step TEXT, occurrence TEXT,"
        " target_kind TEXT, target_id TEXT, customer_id INT, channel TEXT, sender TEXT, status TEXT, planned_at TEXT, updated_at TEXT, content TEXT)"
    )
    stamp = dt.datetime.now(dt.UTC).isoformat()
    started = time.perf_counter()
    with floor_db:
        floor_db.executemany(
            "INSERT OR IGNORE INTO delivery (idempotency_key, sop_id, step, occurrence, target_kind, target_id, customer_id, channel, sender, status, planned_at, updated_at, content)"
            " VALUES (?, 'bench-touch', 'touch', ?, 'customer', ?, ?, 'wecom', ?, 'planned', ?, ?, ?)",
            (
                (
                    f"bench-touch:touch:{day}:customer:{ext}",
                    day.isoformat(),
                    ext,
                    cid,
                    sender,
                    stamp,
                    stamp,
                    text,
                )
                for (cid, ext, _, _, sender), text in zip(customers, texts, strict=True)
            ),
        )
    insert_seconds = time.perf_counter() - started
    floor_db.close()
    return render_seconds, insert_seconds, len(customers)


def run_naive(count: int) -> float:
    from bench.naive import naive

    source = (ROOT / "bench" / "bench_sop.md").read_text(encoding="utf-8").split("## touch\n", 1)[1]
    started = time.perf_counter()
    naive(count, source)
    return time.perf_counter() - started


def emulator_calls(base: str, api: str = "/cgi-bin/externalcontact/add_msg_template") -> int:
    return int(requests.get(f"{base}/emulator/state", timeout=120).json()["calls"].get(api, 0))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--db", type=Path, help="reuse (or create) the demo world in this SQLite file"
    )
    parser.add_argument(
        "--naive", type=int, default=10_000, help="recipients for the naive comparison (0: skip)"
    )
    parser.add_argument(
        "--attachments",
        action="store_true",
        help="the variant with an image and a mini-program card on every message",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sopflow-bench-") as tmp:
        workdir = Path(tmp)
        url, sop_dir = prepare(args, workdir)
        with emulator_process() as base:
            configure(url, sop_dir, base)
            return measure(args, url, workdir, base)


@contextmanager
def emulator_process() -> Iterator[str]:
    """The WeCom emulator in a process of its own, at the base URL yielded (its log is what calls
    and duplicates are counted by)."""
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "sopflow"), "emulator", "--memory", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{base}/emulator/state", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait()


def measure(args: argparse.Namespace, url: str, workdir: Path, base: str) -> int:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from core.clock import at_local, local_today
    from engine import timing
    from orchestration.quiet_server import quiet_server

    day = local_today()
    now = at_local(day, 10, 0)
    # The temporary server writes to a log; what it logged while running is one line below.
    with (
        quiet_server(report=None) as server,
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        rss_before = peak_rss_mb()
        timing.reset()
        started = time.perf_counter()
        wall, flow_run_id, summary = run_occurrence(day, now)
        stages, spans = timing.spent(), timing.spans(since=started)
        rss = peak_rss_mb()
        task_runs = task_runs_of(flow_run_id)
        calls = emulator_calls(base)
        rerun_wall, _, rerun = run_occurrence(day, now)
        rerun_sent = sum(n for k, n in rerun["this_run"].items() if k.startswith("sent"))
        calls_after = emulator_calls(base)
        render_s, insert_s, rows = raw_floor(url, workdir, day)
        naive_wall = run_naive(args.naive) if args.naive else 0.0
    sent = sum(n for k, n in summary["this_run"].items() if k.startswith("sent"))
    floor = render_s + insert_s
    print(
        f"\n1:1 occurrence to {summary['recipients']:,} customers ({sent:,} sent, the rest skipped with reasons)"
    )
    print(f"  end to end            {wall:8.1f} s   ({summary['recipients'] / wall:,.0f} rows/s)")
    for stage, seconds in stages.items():
        first, last = spans.get(stage, (0.0, 0.0))
        print(
            f"  {stage:<21} {seconds:8.1f} s   (summed over worker threads; from {first:5.1f} s to {last:5.1f} s)"
        )
    print(f"  peak RSS              {rss:8.0f} MB  (before the run: {rss_before:.0f} MB)")
    print(f"  Prefect task runs     {task_runs:8d}")
    print(
        f"  WeCom calls           {calls:8d}   (one per staff member and text, ≤ 10,000 recipients each)"
    )
    if args.attachments:
        uploads = emulator_calls(base, "/cgi-bin/media/upload")
        print(
            f"  media uploads         {uploads:8d}   (each file once, whatever the calls using it)"
        )
    print(
        f"  raw floor             {floor:8.1f} s   (executemany {insert_s:.1f} s + Jinja2 {render_s:.1f} s for {rows:,} rows) → {wall / floor:.2f}× the floor"
    )
    print(
        f"  re-run                {rerun_wall:8.1f} s   ({rerun_wall / wall:.0%} of the first run), sent {rerun_sent}, new WeCom calls {calls_after - calls}"
    )
    if args.naive:
        naive_per = naive_wall / args.naive
        ours_per = wall / max(sent, 1)
        print(
            f"  naive, {args.naive:,} messages   {naive_wall:8.1f} s   ({naive_per * 1000:.2f} ms/message vs {ours_per * 1000:.3f} ms here: {naive_per / ours_per:,.0f}× faster)"
        )
    checks = {
        "end to end ≤ 60 s": wall <= 60,
        "peak RSS ≤ 1 GB": rss <= 1024,
        "≤ 3× raw floor": wall <= 3 * floor,
        "re-run ≤ 10% and sends 0": rerun_wall <= 0.1 * wall
        and rerun_sent == 0
        and calls_after == calls,
    }
    if args.naive:
        checks["≥ 100× per message vs naive"] = naive_per >= 100 * ours_per
    print(
        "\n"
        + "\n".join(f"  [{'ok' if good else 'MISSED'}] {name}" for name, good in checks.items())
    )
    if server.problems:
        print(f"\n  Prefect server logged {server.problems}\n  its log: {server.log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
