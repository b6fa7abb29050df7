"""The SQL staging of order CSV files writes exactly what the row-by-row path does, or hands over."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from core.clock import utcnow
from imports import orders_sql, orders_staged
from imports.columns import map_header
from imports.kind import Context, Counts
from imports.orders_fast import header_of
from imports.readers import open_source
from imports.run import KINDS, FileResult, import_files
from models.db import get_engine
from tests.imports.conftest import SAMPLE_FILES, SAMPLES

HEADER = "订单号,会员号,门店编码,下单时间,订单状态,商品编码,数量,单价,实付金额,备注,优惠金额\n"
CLEAN = [
    "C1,M0001,S-BJ01,2026-12-10 09:15:00,已发货,F001,2,29.90,75.70,,1.5",
    "C1,M0001,,2026-12-10 09:15:00,已发货,F002,1,15.9,,,1.5",  # later row: store, total blank
    "C1,M0001,S-BJ01,2026-12-10 09:15:00,已发货,F001,2,29.90,,,1.5",  # the same line twice
    "C2,M0002,,2026-12-10 20:03,,B001,2,89.90,,门店自提,",  # no store, status, total
    "C3,M0003,S-SH01,2026-12-11,RECEIVED,B002,10000000,0.01,,,0",
    "C4,M0002,S-BJ01,2026-01-01 00:00:00,paid,F002,1,1000000,,,",
    "C5,M0001,S-BJ01,2026-12-31 23:59:59,已完成,F001,1,0,0,,",
    "C6,M0001,S-BJ01,2026-06-30 07:05,已退款,B001,1,007.5,,,",
    "",  # an empty line
    "C7,M0003,S-SH01,2026-12-10 09:15:00,Shipped,F002,1,15.90,15.9,,",
]
# One row each that the SQL checks do not vouch for; the row path accepts all of them.
ODD = [
    "C8,M0001,S-BJ01,2026-12-10 09:15:00,paid,F001,1,¥29.90,,,",
    "C8,M0001,S-BJ01,2026/12/10 09:15,paid,F001,1,29.90,,,",
    "C8, M0001,S-BJ01,2026-12-10 09:15:00,paid,F001,1,29.90,,,",
    "C8,M0001,S-BJ01,2026-12-10 09:15:00,paid,F001,1,29.90,,,",
    "C8,M0001,S-BJ01,2026-12-10 09:15:00,paid,F001,1.0,29.90,,,",
    "C8,M0001,S-BJ01,2026-12-10 09:15:00,paid,F001,\u30001,29.90,,,",
]


def _world(migrated_sqlite: Path, path: Path) -> str:
    shutil.copyfile(migrated_sqlite, path)
    url = f"sqlite:///{path}"
    for kind, name in SAMPLE_FILES[:4]:
        [done] = import_files(kind, [SAMPLES / name], url=url)
        assert done.written, done.problems
    return url


def _tables(url: str) -> dict[str, Any]:
    """The orders as stored (every column, ids and the datetime text included) and their lines."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        orders = connection.execute("SELECT * FROM orders ORDER BY id").fetchall()
        lines = connection.execute(
            "SELECT order_id, product_id, quantity, price_fen FROM order_line ORDER BY 1, 2, 3, 4"
        ).fetchall()
        events = connection.execute("SELECT kind, customer_id, payload FROM event").fetchall()
    return {"orders": orders, "lines": lines, "events": events}


def _outcome(url: str, result: FileResult) -> dict[str, Any]:
    rejected = [(r.line, r.reason, r.cells) for r in result.rejected]
    outcome = {"problems": result.problems, "rejected": rejected, "counts": result.counts}
    return {**outcome, **_tables(url), "written": result.written}


def _vouched(url: str, path: Path) -> bool:
    """Whether the SQL staging takes the file (in a transaction rolled back)."""
    source, _ = open_source(path)
    found = header_of(source)
    assert found is not None
    columns = map_header("orders", found[1])
    ctx = Context(now=utcnow(), tz="Asia/Shanghai")
    with Session(get_engine(url)) as session:
        assert orders_staged.applies(KINDS["orders"], source, session)
        taken = orders_staged.load(source, columns, ctx, Counts(), session=session)
        session.rollback()
    return taken


def _both(migrated_sqlite: Path, tmp_path: Path, files: list[str], **options: bool) -> list[Any]:
    """Import `files` one after another with and without staging; each file's outcome by path."""
    outcomes: dict[bool, list[Any]] = {}
    for staged in (True, False):
        url = _world(migrated_sqlite, tmp_path / f"staged-{staged}.db")
        outcomes[staged] = []
        for n, text in enumerate(files):
            path = tmp_path / f"orders-{n}.csv"
            path.write_text(text, encoding="utf-8")
            [result] = import_files("orders", [path], url=url, staged=staged, **options)
            outcomes[staged].append(_outcome(url, result))
    assert outcomes[True] == outcomes[False]
    return outcomes[True]


def test_a_clean_file_is_staged_and_stored_byte_for_byte_as_the_row_path_does(
    migrated_sqlite: Path, tmp_path: Path
) -> None:
    text = HEADER + "\n".join(CLEAN) + "\n"
    url = _world(migrated_sqlite, tmp_path / "probe.db")
    (tmp_path / "probe.csv").write_text(text, encoding="utf-8")
    assert _vouched(url, tmp_path / "probe.csv")
    [first] = _both(migrated_sqlite, tmp_path, [text])
    assert first["written"] and first["problems"] == []
    assert (first["counts"].rows, first["counts"].new) == (9, 7)
    by_no = {row[7]: row for row in first["orders"]}
    assert by_no["C1"][3] == "2026-12-10 01:15:00.000000"  # Asia/Shanghai → UTC, as stored
    assert by_no["C1"][4:7] == (7570, 150, "shipped")
    assert by_no["C2"][2] is None and by_no["C2"][4:7] == (17980, 0, "paid")
    assert by_no["C3"][4] == 10_000_000 and by_no["C4"][4] == 100_000_000
    assert by_no["C6"][3] == "2026-06-29 23:05:00.000000" and by_no["C6"][4] == 750
    assert len(first["lines"]) == 9


def test_an_order_file_imported_again_is_staged_unchanged_then_new_orders_are_added(
    migrated_sqlite: Path, tmp_path: Path
) -> None:
    text = HEADER + "\n".join(CLEAN) + "\n"
    more = text + "C9,M0002,S-SH01,2026-12-12 10:00:00,paid,B002,1,49,,,\n"
    url = _world(migrated_sqlite, tmp_path / "probe.db")
    [done] = import_files("orders", [_file(tmp_path, text)], url=url)
    assert done.written
    assert _vouched(url, _file(tmp_path, text)) and _vouched(url, _file(tmp_path, more))
    first, again, added = _both(migrated_sqlite, tmp_path, [text, text, more])
    counts = [(o["counts"].new, o["counts"].changed, o["counts"].unchanged) for o in (again, added)]
    assert counts == [(0, 0, 7), (1, 0, 7)]
    assert again["orders"] == first["orders"] and again["lines"] == first["lines"]
    assert added["orders"][:-1] == first["orders"] and added["orders"][-1][7] == "C9"


def test_a_changed_order_is_left_to_the_row_path_with_its_events(
    migrated_sqlite: Path, tmp_path: Path
) -> None:
    text = HEADER + "\n".join(CLEAN) + "\n"
    received = text.replace("已发货", "已收货").replace("20:03,,", "20:03,shipped,")
    relined = received.replace("已退款,B001,1,", "已退款,B001,2,")
    url = _world(migrated_sqlite, tmp_path / "probe.db")
    [done] = import_files("orders", [_file(tmp_path, text)], url=url)
    assert done.written
    assert not _vouched(url, _file(tmp_path, received))
    assert not _vouched(url, _file(tmp_path, relined))
    _, changed, again = _both(migrated_sqlite, tmp_path, [text, received, relined])
    assert (changed["counts"].changed, again["counts"].changed) == (2, 1)
    assert changed["counts"].notes  # the members are no WeCom contacts: the row path says so


@pytest.mark.parametrize("odd", ODD)
def test_a_file_with_one_row_sql_cannot_vouch_for_falls_back_with_the_same_result(
    migrated_sqlite: Path, tmp_path: Path, odd: str
) -> None:
    text = HEADER + "\n".join([*CLEAN, odd]) + "\n"
    url = _world(migrated_sqlite, tmp_path / "probe.db")
    vouched = _vouched(url, _file(tmp_path, text))
    assert vouched is (odd == ODD[3])  # the plain row is the control
    [outcome] = _both(migrated_sqlite, tmp_path, [text])
    assert outcome["written"] and outcome["counts"].new == 8


@pytest.mark.parametrize("skip_bad", [True, False])
def test_a_bad_row_falls_back_and_gives_the_same_errors(
    migrated_sqlite: Path, tmp_path: Path, skip_bad: bool
) -> None:
    bad = "C8,M0001,S-BJ01,2026-12-10 09:15:00,paid,NOPE,1,29.90,,,"
    text = HEADER + "\n".join([*CLEAN, bad, CLEAN[0]]) + "\n"  # and C1 again: not consecutive
    [outcome] = _both(migrated_sqlite, tmp_path, [text], skip_bad=skip_bad)
    assert len(outcome["problems"]) == 2 and "unknown SKU 'NOPE'" in outcome["problems"][0]
    assert outcome["written"] is skip_bad


def test_a_day_with_a_daylight_saving_change_is_left_to_the_row_path() -> None:
    assert orders_sql.shift("2026-03-08", "America/New_York") is None
    assert orders_sql.shift("2026-03-09", "America/New_York") == "14400 seconds"
    assert orders_sql.shift("2026-12-10", "Asia/Shanghai") == "-28800 seconds"
    assert orders_sql.shift("2026-02-30", "Asia/Shanghai") is None


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"probe-{abs(hash(text))}.csv"
    path.write_text(text, encoding="utf-8")
    return path
