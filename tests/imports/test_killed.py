"""An import killed mid-way (SIGKILL, after chunks were written in its transaction) leaves the
database exactly as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from models.commerce import Order, OrderLine
from models.db import dispose_engines, session_scope


def test_a_killed_import_leaves_no_partial_orders(catalogue: str, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("order_no,member_no,placed_at,sku,quantity,price\n")
        for n in range(60_000):
            handle.write(f"K{n:06d},M0001,2026-11-01 10:00,F001,1,29.90\n")
    dispose_engines()
    process = subprocess.Popen(
        [sys.executable, "-m", "sopflow.cli", "import", "orders", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    assert process.stderr is not None
    seen = []
    for line in process.stderr:  # a progress line per chunk written inside the transaction
        seen.append(line)
        if "rows read" in line and int(line.split(": ")[-1].split()[0]) >= 4000:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "".join(seen)
    with session_scope(readonly=True) as session:
        orders = session.execute(select(func.count()).select_from(Order)).scalar()
        lines = session.execute(select(func.count()).select_from(OrderLine)).scalar()
    assert (orders, lines) == (0, 0)
