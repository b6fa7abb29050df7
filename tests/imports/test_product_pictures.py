"""Products bring their photo (图片: a URL or a media/ file) for attachments; a file without the
column keeps the photos already recorded, and a path outside the SOP folder is refused."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from models.commerce import Product
from models.db import session_scope
from tests.imports.conftest import run

HEADER = "商品编码,商品名称,品类,单位,售价{}\n"


def pictures() -> dict[str, str | None]:
    with session_scope(readonly=True) as session:
        return dict(session.execute(select(Product.sku, Product.picture)).tuples().all())


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_pictures_are_read_kept_and_checked(database_url: str, tmp_path: Path) -> None:
    first = write(
        tmp_path,
        "products.csv",
        HEADER.format(",图片")
        + "F001,鸡蛋,生鲜,斤,5.99,media/eggs.jpg\n"
        + "F002,香蕉,生鲜,斤,3.99,https://img.example.com/banana.jpg\n"
        + "F003,土豆,生鲜,斤,2.49,\n",
    )
    assert run("products", first).written
    assert pictures() == {
        "F001": "media/eggs.jpg",
        "F002": "https://img.example.com/banana.jpg",
        "F003": None,
    }

    prices = write(tmp_path, "prices.csv", HEADER.format("") + "F001,鸡蛋,生鲜,斤,6.49\n")
    assert run("products", prices).written
    assert pictures()["F001"] == "media/eggs.jpg"  # no 图片 column: the photo stays

    bad = write(tmp_path, "bad.csv", HEADER.format(",图片") + "F003,土豆,生鲜,斤,2.49,../x.jpg\n")
    result = run("products", bad)
    assert not result.written
    (problem,) = result.problems
    assert problem.startswith(f"{bad}:2: error:")
    assert "图片" in problem and "`../x.jpg` points outside the SOP folder" in problem
