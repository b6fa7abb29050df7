"""Sample values of the template variables (lint, preview and the docs render with these)."""

from __future__ import annotations

from typing import Any


def _product(name: str, unit: str, category: str, sku: str) -> dict[str, Any]:
    picture = f"https://img.example.com/products/{sku}.jpg"  # a URL, or a file under media/
    return {"name": name, "unit": unit, "category": category, "sku": sku, "picture": picture}


def _priced(product: dict[str, Any], price: int, list_price: int) -> dict[str, Any]:
    """What deals and campaign items share: the product, its price and the discount."""
    return {
        "product": product,
        "name": product["name"],
        "sku": product["sku"],
        "picture": product["picture"],
        "unit": product["unit"],
        "price": price,
        "list_price": list_price,
        "discount": round(price / list_price, 2),
    }


def _deal(
    product: dict[str, Any], price: int, list_price: int, limit: int, stock: int
) -> dict[str, Any]:
    return {
        **_priced(product, price, list_price),
        "limit": limit,
        "stock": stock,
        "category": product["category"],
    }


def _item(
    product: dict[str, Any], price: int, list_price: int, competitor_price: int, stock: int
) -> dict[str, Any]:
    return {
        **_priced(product, price, list_price),
        "competitor_name": "某东",
        "competitor_price": competitor_price,
        "saving": competitor_price - price,
        "stock": stock,
    }


OWNER = {"name": "王芳", "userid": "wangfang"}
DEALS = [
    _deal(_product("散养土鸡蛋", "斤", "fresh", "FR-1001"), 399, 599, 200, 600),
    _deal(_product("山东西兰花", "斤", "fresh", "FR-1002"), 298, 450, 300, 900),
    _deal(_product("精品五花肉", "斤", "fresh", "FR-1003"), 1580, 2280, 100, 300),
    _deal(_product("海南香蕉", "斤", "fresh", "FR-1004"), 299, 499, 500, 1500),
]
ITEMS = [
    _item(_product("蓝月亮深层洁净洗衣液 3kg", "瓶", "daily", "DL-2001"), 3990, 7990, 5990, 100),
    _item(_product("维达超韧抽纸 24包", "提", "daily", "DL-2002"), 4590, 6990, 5690, 300),
    _item(_product("舒肤佳纯白清香沐浴露 1L", "瓶", "daily", "DL-2003"), 2990, 4990, 3990, 200),
]
# One sample for both `group` variables (lint reads the fields of whichever it finds first).
GROUP = {
    "name": "北京生鲜爱好者群",
    "chat_id": "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA",
    "region": "北京",
    "theme": "生鲜",
    "member_count": 386,
    "owner": OWNER,
}
