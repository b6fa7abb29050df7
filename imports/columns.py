"""The one mapping of column headers to fields, per kind: English names and the Chinese ops use.

docs/imports.md prints these tables; a header matches ignoring case, spaces, `_` and a trailing `*`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One field of a kind and the header names it accepts (the first is the canonical one)."""

    field: str
    names: tuple[str, ...]
    required: bool = True
    help: str = ""


def _c(field: str, *names: str, required: bool = True, help: str = "") -> Column:
    return Column(field, (field, *names), required, help)


_STORE = _c("store", "store_code", "门店编码", "门店代码", "门店号", required=False)
_SKU = _c("sku", "商品编码", "商品代码", "SKU编码", "货号")
_STOCK = _c("stock", "库存", "活动库存", help="whole number")

COLUMNS: dict[str, tuple[Column, ...]] = {
    "stores": (
        _c("code", "store_code", "门店编码", "门店代码", "门店号"),
        _c("name", "门店名称", "门店"),
        _c("city", "城市", "区域"),
    ),
    "staff": (
        _c("userid", "员工账号", "企业微信账号", "成员账号"),
        _c("name", "姓名", "员工姓名"),
        _STORE,
        _c("role", "角色", required=False, help="advisor (导购) unless given"),
    ),
    "products": (
        _SKU,
        _c("name", "商品名称", "品名"),
        _c("category", "品类", "类目", "分类", help="fresh|baby|… or 生鲜|母婴|…"),
        _c("unit", "单位", "规格单位"),
        _c("list_price", "price", "售价", "零售价", "原价", help="yuan"),
        _c("picture", "图片", "商品图片", "主图", required=False, help="URL or media/ file"),
    ),
    "members": (
        _c("member_no", "会员号", "会员编号", "会员卡号"),
        _c("name", "姓名", "会员姓名", required=False),
        _c("mobile", "phone", "手机号", "手机", "手机号码", required=False),
        _c("unionid", "union_id", required=False),
        _STORE,
        _c("gender", "性别", required=False, help="男|女|female|male"),
        _c("birthday", "生日", "出生日期", required=False),
        _c("joined_at", "入会时间", "注册时间", "开卡时间", required=False),
    ),
    "orders": (
        _c("order_no", "订单号", "订单编号", "单号"),
        _c("member_no", "会员号", "会员编号", "会员卡号"),
        _STORE,
        _c("placed_at", "下单时间", "订单时间", "支付时间"),
        _c("status", "订单状态", "状态", required=False, help="paid|shipped|received|refunded"),
        _SKU,
        _c("quantity", "数量", "购买数量"),
        _c("price", "单价", "成交价", "成交单价", help="yuan per unit"),
        _c("total", "实付金额", "订单金额", "实付", required=False, help="default: sum of lines"),
        _c("saved", "优惠金额", "优惠", required=False),
    ),
    "deals": (
        _c("day", "日期", "活动日期"),
        _c("slot", "时段", "场次", help="morning|evening or 早报价|晚安心选"),
        _c("region", "区域", "城市", "地区", required=False, help="blank or 全国: every region"),
        _SKU,
        _c("price", "活动价", "特价", "秒杀价"),
        _c("list_price", "原价", "划线价", "日常价", required=False),
        _c("limit", "限购", "每单限购", "限购数量"),
        _STOCK,
        _c("category", "品类", "类目", required=False, help="default: the product's"),
        _c("position", "排序", "序号", required=False, help="default: order in the file"),
    ),
    "campaign": (
        _c("code", "campaign", "活动编码", "活动代码"),
        _c("name", "活动名称"),
        _c("starts_at", "开始时间", "活动开始"),
        _c("ends_at", "结束时间", "活动结束"),
        _SKU,
        _c("price", "活动价", "大促价"),
        _c("competitor", "competitor_name", "竞品平台", "比价平台", required=False),
        _c("competitor_price", "竞品价", "竞品价格", "比价"),
        _STOCK,
    ),
}
KINDS = tuple(COLUMNS)


def normal(name: str) -> str:
    """A header as matched: no BOM, case, spaces, underscores or required-marker `*`."""
    cleaned = name.replace("\ufeff", "").strip().rstrip("*＊").strip().lower()
    return cleaned.replace(" ", "").replace("_", "").replace("　", "")


@dataclass(frozen=True)
class HeaderMap:
    """Which header feeds which field; the fields missing, and the headers no field uses."""

    fields: dict[str, str]  # header as written -> field
    missing: tuple[Column, ...]
    ignored: tuple[str, ...]
    doubled: tuple[tuple[str, str, str], ...]  # (field, first header, second header)


def map_header(kind: str, header: Iterable[str]) -> HeaderMap:
    """Match a file's header against the kind's columns."""
    by_name = {normal(n): c for c in COLUMNS[kind] for n in c.names}
    fields: dict[str, str] = {}
    taken: dict[str, str] = {}
    ignored: list[str] = []
    doubled: list[tuple[str, str, str]] = []
    for name in header:
        column = by_name.get(normal(name))
        if column is None:
            if name.strip():
                ignored.append(name)
            continue
        if column.field in taken:
            doubled.append((column.field, taken[column.field], name))
            continue
        taken[column.field] = name
        fields[name] = column.field
    missing = tuple(c for c in COLUMNS[kind] if c.required and c.field not in taken)
    return HeaderMap(fields, missing, tuple(ignored), tuple(doubled))
