"""References an import row makes (store code, SKU, member number), looked up per chunk."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from imports.kind import Context
from models.commerce import Product
from models.members import Member
from models.people import Store

# name -> (model key column, the columns a lookup returns)
_LOOKUPS: dict[str, tuple[Any, tuple[Any, ...]]] = {
    "store": (col(Store.code), (col(Store.id),)),
    "sku": (
        col(Product.sku),
        (col(Product.id), col(Product.category), col(Product.list_price_fen)),
    ),
    "member": (col(Member.member_no), (col(Member.id), col(Member.customer_id))),
}


def find(name: str, keys: Iterable[Any], ctx: Context, *, session: Session) -> dict[Any, Any]:
    """The found rows of `keys` (one tuple of the lookup's columns each); misses are left out."""
    known = ctx.lookup(name)
    wanted = {k for k in keys if k is not None and k not in known}
    key_column, columns = _LOOKUPS[name]
    for start in range(0, len(wanted), 5000):
        part = sorted(wanted)[start : start + 5000]
        for row in session.execute(select(key_column, *columns).where(key_column.in_(part))):
            known[row[0]] = tuple(row[1:])
    return known


def forget(ctx: Context, name: str) -> None:
    """Drop a lookup whose rows this run changed."""
    ctx.cache.pop(name, None)
