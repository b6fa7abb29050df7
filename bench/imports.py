"""Benchmark `sopflow import orders`: 1,000,000 orders / 3,000,000 lines from CSV into fresh SQLite."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imports.run import import_files  # noqa: E402
from models import db  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".data"  # generated files, reused across runs
BUDGET_SECONDS = 60.0
LINES_PER_ORDER = 3
STORES, PRODUCTS = 60, 3000
ORDER_HEADER = (
    "订单号",
    "会员号",
    "门店编码",
    "下单时间",
    "订单状态",
    "商品编码",
    "数量",
    "单价",
    "实付金额",
)
STATUSES = ("已完成", "已完成", "已完成", "已发货", "已退款")


def _write(path: Path, header: tuple[str, ...], rows: object) -> None:
    tmp = path.with_suffix(".part")
    with tmp.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)  # type: ignore[arg-type]
    tmp.rename(path)


def world(orders: int, seed: int) -> dict[str, Path]:
    """The import files of a world with `orders` orders (made once, then reused)."""
    folder = CACHE / f"imports-{orders}-{seed}"
    files = {k: folder / f"{k}.csv" for k in ("stores", "products", "members", "orders")}
    if all(p.exists() for p in files.values()):
        return files
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    members = max(orders // 5, 10)
    _write(
        files["stores"],
        ("门店编码", "门店名称", "城市"),
        ((f"S{i:03d}", f"门店{i}", rng.choice(("北京", "上海", "广州"))) for i in range(STORES)),
    )
    prices = [rng.randint(100, 50_000) for _ in range(PRODUCTS)]
    _write(
        files["products"],
        ("商品编码", "商品名称", "品类", "单位", "售价"),
        ((f"P{i:05d}", f"商品{i}", "日用", "件", f"{p / 100:.2f}") for i, p in enumerate(prices)),
    )
    _write(
        files["members"],
        ("会员号", "姓名", "手机号", "门店编码"),
        ((f"M{i:08d}", f"会员{i}", f"138{i:08d}", f"S{i % STORES:03d}") for i in range(members)),
    )
    start = dt.datetime(2025, 1, 1)

    def order_rows() -> object:
        for n in range(orders):
            member = f"M{rng.randrange(members):08d}"
            store = f"S{rng.randrange(STORES):03d}"
            placed = (start + dt.timedelta(seconds=n * 30)).strftime("%Y-%m-%d %H:%M:%S")
            status = rng.choice(STATUSES)
            skus = rng.sample(range(PRODUCTS), LINES_PER_ORDER)
            qty = [rng.randint(1, 3) for _ in skus]
            total = sum(q * prices[s] for q, s in zip(qty, skus, strict=True))
            for s, q in zip(skus, qty, strict=True):
                yield (
                    f"O{n:09d}",
                    member,
                    store,
                    placed,
                    status,
                    f"P{s:05d}",
                    q,
                    f"{prices[s] / 100:.2f}",
                    f"{total / 100:.2f}",
                )

    _write(files["orders"], ORDER_HEADER, order_rows())
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", type=Path, help="write the database here instead of a temp dir")
    parser.add_argument(
        "--row-path", action="store_true", help="orders without the SQL staging (for comparison)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    files = world(args.orders, args.seed)
    print(f"files ready in {time.perf_counter() - started:.1f}s ({files['orders'].parent})")
    with tempfile.TemporaryDirectory(prefix="sopflow-bench-") as tmp:
        path = args.keep or Path(tmp) / "imports.db"
        path.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
        db.upgrade(url)
        for kind in ("stores", "products", "members"):
            began = time.perf_counter()
            [done] = import_files(kind, [files[kind]], url=url)
            assert done.written, done.problems
            print(f"{kind:>9}: {done.counts.new:,} new in {time.perf_counter() - began:.1f}s")
        results = []
        for attempt in ("first", "again"):
            began, cpu = time.perf_counter(), time.process_time()
            [done] = import_files("orders", [files["orders"]], url=url, staged=not args.row_path)
            took, cpu = time.perf_counter() - began, time.process_time() - cpu
            assert done.ok, done.problems[:5]
            c = done.counts
            results.append(took)
            print(
                f"orders {attempt}: {took:.1f}s, {c.new:,} new, {c.changed:,} changed, "
                f"{c.unchanged:,} unchanged; {c.rows / took:,.0f} lines/s, "
                f"{(c.new + c.changed + c.unchanged) / took:,.0f} orders/s; "
                f"{cpu:.1f}s CPU, load average {os.getloadavg()[0]:.1f}"
            )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20
        print(f"peak RSS {peak:,.0f} MiB, database {size:,.0f} MiB, budget {BUDGET_SECONDS:.0f}s")
        return 0 if results[0] <= BUDGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
