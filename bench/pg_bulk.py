"""Delivery inserts on PostgreSQL, one way against another: executemany, multi-row VALUES, COPY.

    .venv/bin/python bench/pg_bulk.py [ROWS] [--ways executemany,values,copy] [--psycopg3-path DIR]

Starts a throwaway PostgreSQL (sopflow/pg_local.py), migrates it, and writes ROWS (default
100,000) Delivery rows of one occurrence in batches as `record_planned` does, each way into an
empty table, then the same rows again (every key exists: all skipped). psycopg 3 is measured
too when importable (e.g. `pip install --target DIR psycopg[binary]` and --psycopg3-path DIR).
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy.dialects import postgresql  # noqa: E402

from models import bulk  # noqa: E402
from models.bulk_copy import copy_insert_returning  # noqa: E402
from models.db import dispose_engines, upgrade  # noqa: E402
from models.deliveries import DELIVERY_COLUMNS, Occurrence, PlannedTarget  # noqa: E402
from sopflow.pg_local import create_database, postgres_server  # noqa: E402

BATCH = 20_000
RETURNING = ("id", "target_id", "status")


def rows_for(count: int) -> list[tuple[Any, ...]]:
    o = Occurrence("bench", "s1", "2026-12-02", "wecom", "run-1")
    now = dt.datetime.now(dt.UTC)
    shared = (o.sop_id, o.step, o.occurrence, o.channel, o.flow_run_id, now, now)
    targets = [PlannedTarget("customer", f"wm{i:09d}", f"staff{i % 300}") for i in range(count)]
    return [(o.key(t.target_kind, t.target_id), *shared, *t) for t in targets]


def executemany(conn: Any, rows: Sequence[tuple[Any, ...]]) -> int:
    statement = postgresql.insert(bulk.DELIVERY).on_conflict_do_nothing()
    statement = statement.returning(*(bulk.DELIVERY.c[c] for c in RETURNING))
    dicts = [dict(zip(DELIVERY_COLUMNS, row, strict=True)) for row in rows]
    return len(conn.execute(statement, dicts).all())


def values(conn: Any, rows: Sequence[tuple[Any, ...]]) -> int:
    return len(bulk.values_insert_returning(conn, bulk.DELIVERY, DELIVERY_COLUMNS, rows, RETURNING))


def copy(conn: Any, rows: Sequence[tuple[Any, ...]]) -> int:
    return len(copy_insert_returning(conn, bulk.DELIVERY, DELIVERY_COLUMNS, rows, RETURNING))


def measure(url: str, name: str, way: Callable[[Any, Sequence[Any]], int], rows: list[Any]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE delivery RESTART IDENTITY CASCADE")
    said = []
    for label in ("new", "again"):
        started = time.perf_counter()
        written = 0
        with engine.begin() as conn:
            for part in bulk.chunked(rows, BATCH):
                written += way(conn, part)
        seconds = time.perf_counter() - started
        said.append(
            f"{label} {seconds:6.2f} s ({len(rows) / seconds:>9,.0f} rows/s, {written} written)"
        )
    engine.dispose()
    print(f"{name:<28} " + "   ".join(said), flush=True)


def main() -> None:
    args = sys.argv[1:]
    if "--psycopg3-path" in args:
        at = args.index("--psycopg3-path")
        sys.path.append(args[at + 1])
        del args[at : at + 2]
    ways = {"executemany", "values", "copy"}
    if "--ways" in args:
        at = args.index("--ways")
        ways = set(args[at + 1].split(","))
        del args[at : at + 2]
    count = int(args[0]) if args else 100_000
    rows = rows_for(count)
    with postgres_server() as server:
        url = create_database(server, "bench")
        upgrade(url)
        dispose_engines()
        print(f"{count:,} Delivery rows in batches of {BATCH:,}, one transaction each way")
        drivers = ["psycopg2"]
        try:
            import psycopg  # noqa: F401

            drivers.append("psycopg")
        except ImportError:
            print("(psycopg 3 not importable: measured with psycopg2 only)")
        for driver in drivers:
            driver_url = url.replace("+psycopg2", f"+{driver}")
            for key, name, way in (
                ("executemany", "executemany", executemany),
                ("values", "multi-row VALUES", values),
                ("copy", "COPY + INSERT SELECT", copy),
            ):
                if key in ways:
                    measure(driver_url, f"{driver} {name}", way, rows)


if __name__ == "__main__":
    main()
