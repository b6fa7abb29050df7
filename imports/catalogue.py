"""Import kinds for what is sold: products, the daily deal sheet (早报价/晚安心选), a campaign's items."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select
from sqlmodel import Session, col

from imports import refs, values
from imports.errors import RowError
from imports.kind import Cells, Context, Counts, Item, one_of, text
from imports.people import _Single
from imports.upsert import upsert
from models.commerce import Campaign, CampaignItem, Deal, Product
from models.vocab import CATEGORIES, DEAL_SLOTS
from soplang.attachment_spec import is_url, path_problem
from soplang.filters import yuan

PRODUCT: Table = Product.__table__  # type: ignore[attr-defined]
DEAL: Table = Deal.__table__  # type: ignore[attr-defined]
CAMPAIGN: Table = Campaign.__table__  # type: ignore[attr-defined]
CAMPAIGN_ITEM: Table = CampaignItem.__table__  # type: ignore[attr-defined]
CATEGORY_NAMES = {**{k: k for k in CATEGORIES}, **{v: k for k, v in CATEGORIES.items()}}
SLOTS = {
    **{s: s for s in DEAL_SLOTS},
    **{"早报价": "morning", "早": "morning", "晚安心选": "evening", "晚": "evening"},
}
EVERY_REGION = ("", "全国", "全部", "所有", "all")


def _check_skus(items: list[Item], ctx: Context, session: Session) -> dict[str, Any]:
    found = refs.find("sku", (i.record["sku"] for i in items), ctx, session=session)
    for item in items:
        sku = item.record["sku"]
        if sku is not None and sku not in found:
            item.problems.append((item.lines[0], f"unknown SKU {sku!r}: import products first"))
    return found


def _picture(value: object) -> str:
    """A product photo: a URL, or a file under the SOP folder such as media/eggs.jpg."""
    picture = values.text(value, max_length=512)
    problem = None if is_url(picture) else path_problem(picture)
    if problem:
        raise RowError(problem)
    return picture


class Products(_Single):
    name = "products"

    def parse(self, cells: Cells, ctx: Context) -> Any:
        record = {
            "sku": cells.need("sku", text(32)),
            "name": cells.need("name", text(128)),
            "category": cells.need("category", one_of(CATEGORY_NAMES, "category")),
            "unit": cells.need("unit", text(8)),
            "list_price_fen": cells.need("list_price", values.money),
        }
        if "picture" in cells.cells:  # a file without the column keeps the pictures it had
            record["picture"] = cells.get("picture", _picture)
        return record

    def key(self, record: Any) -> Any:
        return record["sku"]

    def resolve(self, items: list[Item], ctx: Context, *, session: Session) -> None:
        return None

    def write(self, items: list[Item], ctx: Context, counts: Counts, *, session: Session) -> None:
        rows = [i.record for i in items]
        keys = [r["sku"] for r in rows]
        upsert(session, PRODUCT, rows, key=("sku",), where=PRODUCT.c.sku.in_(keys), counts=counts)
        refs.forget(ctx, "sku")


class Deals(_Single):
    name = "deals"

    def parse(self, cells: Cells, ctx: Context) -> Any:
        region = (
            values.text(cells.cells.get("region"), max_length=32) if "region" in cells.cells else ""
        )
        record = {
            "day": cells.need("day", values.day),
            "slot": cells.need("slot", one_of(SLOTS, "slot")),
            "region": None if region.lower() in EVERY_REGION else region,
            "sku": cells.need("sku", text(32)),
            "price_fen": cells.need("price", values.money),
            "list_price_fen": cells.get("list_price", values.money),
            "limit_per_order": cells.need("limit", lambda v: values.count(v, minimum=1)),
            "stock": cells.need("stock", values.count),
            "category": cells.get("category", one_of(CATEGORY_NAMES, "category")),
            "position": cells.get("position", values.count),
        }
        price, listed = record["price_fen"], record["list_price_fen"]
        if price is not None and listed is not None and price > listed:
            cells.fail(f"the deal price {yuan(price)} is above the list price {yuan(listed)}")
        return record

    def key(self, record: Any) -> Any:
        return (record["day"], record["slot"], record["region"], record["sku"])

    def resolve(self, items: list[Item], ctx: Context, *, session: Session) -> None:
        found = _check_skus(items, ctx, session)
        for item in items:
            product = found.get(item.record["sku"])
            if product and item.record["price_fen"] > (item.record["list_price_fen"] or product[2]):
                item.problems.append(
                    (item.lines[0], "the deal price is above the product's list price; give 原价")
                )

    def write(self, items: list[Item], ctx: Context, counts: Counts, *, session: Session) -> None:
        products = ctx.lookup("sku")
        rows = []
        for index, record in enumerate(i.record for i in items):
            product_id, category, list_price = products[record["sku"]]
            rows.append(
                {
                    "day": record["day"],
                    "slot": record["slot"],
                    "region": record["region"],
                    "product_id": product_id,
                    "category": record["category"] or category,
                    "price_fen": record["price_fen"],
                    "list_price_fen": record["list_price_fen"] or list_price,
                    "limit_per_order": record["limit_per_order"],
                    "stock": record["stock"],
                    "position": record["position"] if record["position"] is not None else index,
                }
            )
        days = sorted({r["day"] for r in rows})
        key = ("day", "slot", "region", "product_id")
        upsert(session, DEAL, rows, key=key, where=DEAL.c.day.in_(days), counts=counts)


class CampaignKind(_Single):
    """One or more campaigns, a row per item; the campaign columns repeat on every row."""

    name = "campaign"
    grouped = True

    def parse(self, cells: Cells, ctx: Context) -> Any:
        record = {
            "code": cells.need("code", text(64)),
            "name": cells.need("name", text(128)),
            "starts_at": cells.need("starts_at", lambda v: values.moment(v, ctx.tz)),
            "ends_at": cells.need("ends_at", lambda v: values.moment(v, ctx.tz)),
            "items": [
                {
                    "sku": cells.need("sku", text(32)),
                    "price_fen": cells.need("price", values.money),
                    "competitor_name": cells.get("competitor", text(32), "某东"),
                    "competitor_price_fen": cells.need("competitor_price", values.money),
                    "stock": cells.need("stock", values.count),
                }
            ],
        }
        if record["starts_at"] and record["ends_at"] and record["ends_at"] <= record["starts_at"]:
            cells.fail("the campaign ends before it starts")
        return record

    def key(self, record: Any) -> Any:
        return record["code"]

    def merge(self, item: Item, record: Any) -> None:
        first = item.record
        for field in ("name", "starts_at", "ends_at"):
            if record[field] != first[field]:
                raise RowError(
                    f"{field} differs from the campaign's first row (line {item.lines[0]})"
                )
        sku = record["items"][0]["sku"]
        if any(i["sku"] == sku for i in first["items"]):
            raise RowError(f"SKU {sku!r} is already in campaign {first['code']!r} above")
        first["items"].extend(record["items"])

    def resolve(self, items: list[Item], ctx: Context, *, session: Session) -> None:
        found = refs.find(
            "sku", (i["sku"] for it in items for i in it.record["items"]), ctx, session=session
        )
        for item in items:
            for line, entry in zip(item.lines, item.record["items"], strict=True):
                if entry["sku"] not in found:
                    item.problems.append(
                        (line, f"unknown SKU {entry['sku']!r}: import products first")
                    )
        codes = [i.record["code"] for i in items]
        rows = session.execute(
            select(
                col(Campaign.code),
                col(Campaign.status),
                col(Campaign.starts_at),
                col(Campaign.ends_at),
            ).where(col(Campaign.code).in_(codes))
        ).all()
        for code, status, starts, ends in rows:
            item = next(i for i in items if i.record["code"] == code)
            moved = (starts, ends) != (item.record["starts_at"], item.record["ends_at"])
            if status != "draft" and moved:
                item.problems.append(
                    (
                        item.lines[0],
                        f"campaign {code!r} is {status}: move its window with "
                        f"`sopflow campaign reschedule {code} --start …`, not by import",
                    )
                )

    def write(self, items: list[Item], ctx: Context, counts: Counts, *, session: Session) -> None:
        products = ctx.lookup("sku")
        heads = [{k: v for k, v in i.record.items() if k != "items"} for i in items]
        codes = [h["code"] for h in heads]
        done = upsert(session, CAMPAIGN, heads, key=("code",), where=CAMPAIGN.c.code.in_(codes))
        changed = set(done.new) | set(done.changed)
        for item in items:
            campaign_id = done.ids[item.record["code"]]
            rows = [
                {
                    "campaign_id": campaign_id,
                    "product_id": products[e["sku"]][0],
                    **{k: v for k, v in e.items() if k != "sku"},
                }
                for e in item.record["items"]
            ]
            where = CAMPAIGN_ITEM.c.campaign_id == campaign_id
            lines = upsert(
                session, CAMPAIGN_ITEM, rows, key=("campaign_id", "product_id"), where=where
            )
            if lines.new or lines.changed:
                changed.add(item.record["code"])
        counts.new += len(done.new)
        counts.changed += len(changed - set(done.new))
        counts.unchanged += len(items) - len(changed)
