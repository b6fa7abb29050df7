"""`make bench-review`: a month of 1,000,000 customers' deliveries and orders reviewed; figures printed.

Stages: load the demo world (1M customers, 180 days of real orders; a subprocess) → write a month
of touches set-based (each customer 4 lifecycle-style 1:1 touches with a 10 % holdout, delivered /
sent / capped / not-a-friend outcomes, plus every group's morning and evening touches each day;
not timed) → `sopflow report` for that month (when attribution, the other measures, the
assembly and the HTML finish) → the report's totals checked against direct SQL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
TARGET_SECONDS = 60.0
DAYS = 30
# (sop id, step, day of the month it is sent on for a customer with id % 4 == index, holdout)
TOUCHES = [
    ("dormant-recall", "care", 3, True),
    ("growing-cross-sell", "offer", 10, False),
    ("mature-member", "perks", 17, False),
    ("double-12", "burst", 24, False),
]


def load_world(db: Path, customers: int) -> None:
    started = time.perf_counter()
    env = dict(os.environ, SOPFLOW_DATABASE_URL=f"sqlite:///{db}")
    subprocess.run(
        [str(BIN / "sopflow"), "demo-data", "--customers", str(customers)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"demo world: {customers:,} customers loaded in {time.perf_counter() - started:.1f} s")


def write_month(db: Path, first: dt.date) -> int:
    """A month of touches in the stored layout, day by day as the flows write them (INSERT … SELECT)."""
    started = time.perf_counter()
    con = sqlite3.connect(db)
    stamp = "%Y-%m-%d %H:%M:%S.000000"
    for n in range(DAYS):
        day = first + dt.timedelta(days=n)
        for slot, utc_time in (("morning-price", "00:30:00"), ("evening-flash-sale", "13:00:00")):
            at = f"'{day} {utc_time}'"
            con.execute(
                f"""
                INSERT INTO delivery (idempotency_key, sop_id, step, occurrence, target_kind,
                    target_id, group_id, channel, sender, status, msgid, planned_at, sent_at,
                    updated_at)
                SELECT '{slot}:main:{day}:group:' || g.chat_id, '{slot}', 'main', '{day}', 'group',
                    g.chat_id, g.id, 'wecom', s.userid,
                    CASE WHEN g.id % 25 = 0 THEN 'unconfirmed' ELSE 'delivered' END,
                    'grp-{slot}-{day}-' || s.userid, strftime('{stamp}', {at}),
                    strftime('{stamp}', {at}, '+5 minutes'), strftime('{stamp}', {at})
                FROM customer_group g JOIN staff s ON s.id = g.owner_staff_id
                WHERE g.dismissed_at IS NULL
                """
            )
        for sop, step, touch_day, holdout in TOUCHES:
            if not touch_day <= n < touch_day + 4:
                continue
            held = "c.id % 10 = 0" if holdout else "0"
            status = (
                f"CASE WHEN {held} THEN 'skipped' WHEN c.id % 20 = 1 THEN 'skipped' "
                "WHEN c.id % 20 = 2 THEN 'sent' WHEN c.id % 20 = 3 THEN 'not_a_friend' "
                "WHEN c.id % 20 = 4 THEN 'unconfirmed' ELSE 'delivered' END"
            )
            reason = (
                f"CASE WHEN {held} THEN 'holdout' "
                "WHEN c.id % 20 = 1 THEN 'capped (lost to double-12)' END"
            )
            at = f"'{day} 02:00:00'"  # 10:00 Asia/Shanghai
            con.execute(
                f"""
                INSERT INTO delivery (idempotency_key, sop_id, step, occurrence, target_kind,
                    target_id, customer_id, channel, sender, status, reason, msgid, planned_at,
                    sent_at, updated_at)
                SELECT '{sop}:{step}:{day}:customer:' || c.external_userid, '{sop}', '{step}',
                    '{day}', 'customer', c.external_userid, c.id, 'wecom', s.userid, {status},
                    {reason},
                    CASE WHEN {status} <> 'skipped' THEN 'msg-{sop}-{day}-' || s.userid END,
                    strftime('{stamp}', {at}),
                    CASE WHEN {status} <> 'skipped'
                         THEN strftime('{stamp}', {at}, '+' || (c.id % 50) || ' minutes') END,
                    strftime('{stamp}', {at})
                FROM customer c LEFT JOIN staff s ON s.id = c.owner_staff_id
                WHERE c.contact_state = 'active' AND c.id % 4 = {n - touch_day}
                """
            )
    con.commit()
    rows = con.execute("SELECT count(*) FROM delivery").fetchone()[0]
    con.execute("ANALYZE")
    con.close()
    print(
        f"a month of touches: {rows:,} Delivery rows written in {time.perf_counter() - started:.1f} s"
    )
    return int(rows)


def direct_counts(db: Path, starts: dt.datetime, ends: dt.datetime) -> dict[str, int]:
    con = sqlite3.connect(db)
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    rows = con.execute(
        "SELECT status, count(*) FROM delivery WHERE planned_at >= ? AND planned_at < ? GROUP BY status",
        (starts.strftime(fmt), ends.strftime(fmt)),
    ).fetchall()
    orders = con.execute(
        "SELECT count(*) FROM orders WHERE placed_at >= ? AND placed_at < ? AND status IN ('paid', 'shipped')",
        (starts.strftime(fmt), ends.strftime(fmt)),
    ).fetchone()[0]
    con.close()
    return {**dict(rows), "orders": int(orders)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--db", type=Path, help="a demo database to copy instead of loading one (kept unchanged)"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sopflow-review-bench-"))
    db = workdir / "review.db"
    if args.db:
        subprocess.run(["cp", str(args.db), str(db)], check=True)
    else:
        load_world(db, args.customers)
    os.environ.update(
        SOPFLOW_DATABASE_URL=f"sqlite:///{db}",
        SOPFLOW_REPORTS_DIR=str(workdir / "reports"),
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    from core.clock import local_today
    from models.db import upgrade
    from review.period import Period
    from review.report import make_report

    upgrade()
    ends = local_today() - dt.timedelta(days=1)
    starts = ends - dt.timedelta(days=DAYS - 1)
    write_month(db, starts)

    stages: list[tuple[str, float]] = []
    started = time.perf_counter()

    def progress(_fraction: float, stage: str) -> None:
        stages.append((stage, time.perf_counter() - started))

    report = make_report(starts, ends, progress=progress)
    wall = time.perf_counter() - started
    print(f"\nreview of {starts} – {ends} ({DAYS} days), SQLite; attribution and the other")
    print("measures run side by side (two connections), so each line is the time it finished at:")
    for stage, at in stages[1:]:
        print(f"  {'numbers done' if stage == 'done' else stage:<40} at {at:6.1f} s")
    print(
        f"  {'HTML report written (total)':<40} at {wall:6.1f} s   (target ≤ {TARGET_SECONDS:.0f} s)"
    )
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    print(f"  report: {report.path.stat().st_size / 1024:,.0f} KB of HTML")

    period = Period(starts, ends, "Asia/Shanghai")
    direct = direct_counts(db, period.start_utc, period.end_utc)
    sops = report.review.tables["sop"]
    headline = {kpi.name: kpi.value for kpi in report.review.headline}
    checks = {
        "planned": (
            sum(r["planned"] for r in sops),
            sum(v for k, v in direct.items() if k != "orders"),
        ),
        "delivered": (sum(r["delivered"] for r in sops), direct.get("delivered", 0)),
        "skipped": (sum(r["skipped"] for r in sops), direct.get("skipped", 0)),
    }
    print("\nreport vs direct SQL:")
    for name, (ours, theirs) in checks.items():
        print(f"  {name:<10} {ours:>12,} {theirs:>12,}  {'ok' if ours == theirs else 'MISMATCH'}")
    print(
        f"  attributed orders {headline['attributed_orders']:,} of {direct['orders']:,} "
        f"({(headline['private_domain_order_share'] or 0):.1%})"
    )
    for row in report.review.uplift:
        print(
            f"  uplift {row.sop_id}: {row.uplift:+.2%} (95% CI {row.ci_low:+.2%} … {row.ci_high:+.2%}), "
            f"n = {row.treated:,} / {row.control:,}"
        )
    kept = Path(tempfile.gettempdir()) / report.path.name
    shutil.copy(report.path, kept)
    shutil.rmtree(workdir)  # gigabytes of database; the report is kept
    print(f"  report kept at {kept}")
    if any(ours != theirs for ours, theirs in checks.values()):
        sys.exit("the report disagrees with the Delivery table")


if __name__ == "__main__":
    main()
