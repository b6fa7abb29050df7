"""The variables each SOP step's template receives, with sample values for lint, preview and docs.

This is the one contract between the flows (which build these contexts from the
database) and the SOP files (which use them). Money is in fen (int); show it with
`| yuan`. Dates are local (Asia/Shanghai).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from soplang.context_samples import DEALS as _DEALS
from soplang.context_samples import GROUP as _GROUP
from soplang.context_samples import ITEMS as _ITEMS
from soplang.context_samples import OWNER as _OWNER
from soplang.filters import weekday_cn
from soplang.spec import CHANNELS, IMPLICIT_STEP, KINDS, SopSpec

_TZ = ZoneInfo("Asia/Shanghai")
RECAP_STEP = "recap"


@dataclass(frozen=True)
class Variable:
    """A top-level template variable: what it is, a sample, and which steps receive it."""

    name: str
    doc: str
    sample: Any
    kinds: tuple[str, ...] = KINDS
    channels: tuple[str, ...] = CHANNELS
    steps: tuple[str, ...] | None = None  # None: every step
    on: tuple[str, ...] | None = None  # trigger events; None: every event

    def provided(self, kind: str, channel: str, step: str, on: str | None) -> bool:
        return (
            kind in self.kinds
            and channel in self.channels
            and (self.steps is None or step in self.steps)
            and (self.on is None or on in self.on)
        )

    @property
    def available_in(self) -> str:
        """Where the variable is provided, in words for the docs."""
        parts = []
        if self.kinds != KINDS:
            parts.append("kind " + "/".join(self.kinds))
        if self.channels != CHANNELS:
            parts.append("channel " + "/".join(self.channels))
        if self.steps:
            parts.append("step " + "/".join(self.steps))
        if self.on:
            parts.append("on " + "/".join(self.on))
        return "; ".join(parts) or "always"


VARIABLES: tuple[Variable, ...] = (
    Variable("sop", "this SOP", {"id": "morning-price", "title": "早报价 · 每日特价早报"}),
    Variable("today", "today's date (Asia/Shanghai)", dt.date(2026, 11, 24)),
    Variable("weekday", "today's weekday", "周二"),
    Variable(
        "group",
        "the customer group receiving the message",
        _GROUP,
        channels=("group", "robot"),
    ),
    Variable(
        "customer",
        "the customer receiving the message (1:1)",
        {
            "name": "李娜",
            "external_userid": "wmOgQhDgAAr5bEUd4ZGH5Cc8fFQ2PDFg",
            "region": "上海",
            "tier": "gold",
            "tier_label": "黄金",
            "stage": "mature",
            "stage_label": "成熟期",
            "owner": {"name": _OWNER["name"]},
            "birthday": {"month": 3, "day": 14},
            "source_state": "store-sh02",
        },
        channels=("customer",),
    ),
    Variable(
        "slot",
        "the daily slot: morning (早报价) or evening (晚安心选)",
        "morning",
        kinds=("community",),
        channels=("group", "robot"),  # a 1:1 community step gets no group deals
    ),
    Variable(
        "deals",
        "today's deals for the group's theme, in display order",
        _DEALS,
        kinds=("community",),
        channels=("group", "robot"),  # a 1:1 community step gets no group deals
    ),
    Variable(
        "campaign",
        "the promotion (大促) this step belongs to",
        {
            "code": "double12-2026",
            "name": "双12年终狂欢",
            "starts_at": dt.datetime(2026, 12, 12, 10, 0, tzinfo=_TZ),
            "ends_at": dt.datetime(2026, 12, 12, 23, 59, tzinfo=_TZ),
        },
        kinds=("promotion",),
    ),
    Variable("items", "the campaign's items with competitor prices", _ITEMS, kinds=("promotion",)),
    Variable(
        "stats",
        "the burst's real sales, for the recap",
        {
            "units_sold": 2860,
            "buyers": 1932,
            "revenue": 11268000,
            "sold_out": [{**_ITEMS[0], "stock": 0}],
            "items_left": _ITEMS[1:],
        },
        kinds=("promotion",),
        steps=(RECAP_STEP,),
    ),
    Variable(
        "stage",
        "the customer's lifecycle stage and since when",
        {"key": "mature", "label": "成熟期", "since": dt.date(2026, 10, 2), "days": 53},
        kinds=("lifecycle",),
    ),
    Variable(
        "report",
        "the customer's monthly member report (会员月报)",
        {"month": "11月", "saved": 12860, "orders": 6, "top_category": "生鲜"},
        kinds=("lifecycle",),
    ),
    Variable(
        "event",
        "the event that triggered this message",
        {
            "kind": "favourite.price_drop",
            "occurred_at": dt.datetime(2026, 11, 24, 9, 12, tzinfo=_TZ),
        },
        kinds=("trigger",),
    ),
    Variable(
        "product",
        "the favourited product whose price dropped",
        {
            "name": "飞鹤星飞帆幼儿配方奶粉 3段 700g",
            "unit": "罐",
            "price": 22800,
            "old_price": 25800,
        },
        kinds=("trigger",),
        on=("favourite.price_drop",),
    ),
    Variable(
        "order",
        "the order that was shipped (order.shipped) or received (order.received)",
        {"id": "SO202611240123", "total": 18650, "item_count": 4},
        kinds=("trigger",),
        on=("order.shipped", "order.received"),
    ),
    Variable(
        "birthday",
        "which birthday event: the day itself, or the 1st of the birthday month",
        {"kind": "day"},
        kinds=("trigger",),
        on=("customer.birthday",),
    ),
    Variable("checkin", "the check-in (签到)", {"streak": 7}, kinds=("trigger",), on=("checkin",)),
    Variable(
        "group",
        "the group the customer just joined (the welcome goes 1:1)",
        _GROUP,
        kinds=("trigger",),
        on=("group.member_joined",),
    ),
    Variable(
        "complaint",
        "the complaint (投诉) the event is about",
        {"id": "TS-20261124-001", "summary": "鸡蛋破损", "level": "high"},
        kinds=("trigger",),
        on=("complaint.opened", "complaint.updated", "complaint.closed"),
    ),
    Variable(
        "coupon",
        "the coupon the chain issued for this touch (only in a step with `issue:`)",
        {"code": "QW8K2M9X", "expires": dt.date(2026, 12, 1)},
        kinds=("trigger",),
        channels=("customer",),
    ),
)

# One line per field, in Chinese for ops; `[]` marks each element of a list.
FIELD_DOCS: dict[str, str] = {
    "sop.id": "SOP 的 id",
    "sop.title": "SOP 的标题",
    "group.name": "群名称",
    "group.chat_id": "群 ID(内部用,不要发给客户)",
    "group.region": "群所在区域",
    "group.theme": "群主题(生鲜、母婴 …)",
    "group.member_count": "群人数",
    "group.owner.name": "群主(导购)姓名",
    "group.owner.userid": "群主的企业微信账号(内部用)",
    "customer.name": "客户称呼",
    "customer.external_userid": "客户的外部联系人 ID(内部用,不要写进消息)",
    "customer.region": "客户所在区域",
    "customer.tier": "会员等级代码(bronze/silver/gold/platinum)",
    "customer.tier_label": "会员等级(青铜/白银/黄金/铂金)",
    "customer.stage": "生命周期阶段代码(new/growing/mature/dormant/churned)",
    "customer.stage_label": "生命周期阶段(引入期 …)",
    "customer.owner.name": "专属顾问姓名",
    "customer.birthday.month": "生日月份(没登记生日时整个 customer.birthday 为空,先写 {% if customer.birthday %})",
    "customer.birthday.day": "生日日期(几号);不提供出生年份",
    "customer.source_state": "加好友时渠道活码的 state(如 store-bj01,哪家门店的码);没有时为空字符串",
    "deals[].product.name": "商品名",
    "deals[].product.unit": "单位(斤、盒 …)",
    "deals[].product.category": "品类代码",
    "deals[].product.sku": "商品编码",
    "deals[].product.picture": "商品图片:网址或 media/ 下的文件;没有时为空字符串",
    "deals[].name": "商品名(同 product.name)",
    "deals[].sku": "商品编码(同 product.sku)",
    "deals[].picture": "商品图片(同 product.picture),可作图片附件",
    "deals[].unit": "单位(同 product.unit)",
    "deals[].price": "特价,分",
    "deals[].list_price": "原价,分",
    "deals[].discount": "折扣(0.5 = 5折,用 zhe 过滤器显示)",
    "deals[].limit": "限前N单:前 N 单享此价",
    "deals[].stock": "活动库存(份数)",
    "deals[].category": "品类代码",
    "campaign.code": "活动代码",
    "campaign.name": "活动名称",
    "campaign.starts_at": "活动开始时间(本地)",
    "campaign.ends_at": "活动结束时间(本地)",
    "items[].product.name": "商品名",
    "items[].product.unit": "单位",
    "items[].product.category": "品类代码",
    "items[].product.sku": "商品编码",
    "items[].product.picture": "商品图片:网址或 media/ 下的文件;没有时为空字符串",
    "items[].name": "商品名(同 product.name)",
    "items[].sku": "商品编码(同 product.sku)",
    "items[].picture": "商品图片(同 product.picture),可作图片附件",
    "items[].unit": "单位",
    "items[].price": "活动价,分",
    "items[].list_price": "原价,分",
    "items[].discount": "折扣(0.1 = 1折,用 zhe 过滤器显示)",
    "items[].competitor_name": "比价对象(某东 …)",
    "items[].competitor_price": "比价对象的价格,分",
    "items[].saving": "比对方便宜多少,分",
    "items[].stock": "活动库存",
    "stats.units_sold": "爆发期卖出件数",
    "stats.buyers": "下单人数",
    "stats.revenue": "销售额,分",
    "stats.sold_out": "售罄的商品列表(字段同 items[])",
    "stats.items_left": "还有库存的商品列表(字段同 items[])",
    "stage.key": "阶段代码",
    "stage.label": "阶段名称",
    "stage.since": "进入该阶段的日期",
    "stage.days": "进入该阶段的天数",
    "report.month": "报告月份(11月)",
    "report.saved": "本月节省金额,分",
    "report.orders": "本月订单数",
    "report.top_category": "本月常购品类",
    "event.kind": "事件类型",
    "event.occurred_at": "事件发生时间(本地)",
    "product.name": "商品名",
    "product.unit": "单位",
    "product.price": "现价,分",
    "product.old_price": "降价前价格,分",
    "order.id": "订单号",
    "order.total": "订单金额,分",
    "order.item_count": "商品件数",
    "birthday.kind": "day = 生日当天;month = 生日月的 1 号",
    "checkin.streak": "连续签到天数",
    "complaint.id": "投诉单号",
    "complaint.summary": "投诉摘要(可能为空)",
    "complaint.level": "紧急程度(normal/high/urgent)",
    "coupon.code": "券码(连锁券系统发给这位客户的,文案里必须出现)",
    "coupon.expires": "券的到期日(本地日期)",
}
# Lists whose elements have the same fields as another documented list.
_SAME_AS = {"stats.sold_out", "stats.items_left"}
# Fields that must never appear in a message (lint warns).
INTERNAL_FIELDS = ("customer.external_userid", "group.chat_id", "group.owner.userid")
# Fields unique to one customer: a 1:1 text reading them cannot be shared by a staff member's
# customers, so WeCom gets one mass-message task per customer instead of one per text.
PER_CUSTOMER_FIELDS = ("customer.name",)


def _variables_for(kind: str, channel: str, step: str, on: str | None) -> Iterator[Variable]:
    return (v for v in VARIABLES if v.provided(kind, channel, step, on))


def sample_context(
    kind: str,
    channel: str,
    step: str = IMPLICIT_STEP,
    on: str | None = None,
    *,
    sop: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A fresh context with sample values, exactly the variables that step receives."""
    context = {v.name: copy.deepcopy(v.sample) for v in _variables_for(kind, channel, step, on)}
    if sop is not None:
        context["sop"] = dict(sop)
    if on is not None and "event" in context:
        context["event"]["kind"] = on
    return context


def available_variables(
    kind: str, channel: str, step: str = IMPLICIT_STEP, on: str | None = None
) -> list[str]:
    """The names of the top-level variables that step receives, sorted."""
    return sorted(v.name for v in _variables_for(kind, channel, step, on))


def field_paths(name: str, value: Any) -> Iterator[str]:
    """Dotted paths of every field under a variable, e.g. `deals[].product.name`."""
    if name in _SAME_AS:
        yield name
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from field_paths(f"{name}.{key}", inner)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        yield from field_paths(f"{name}[]", value[0])
    else:
        yield name


def reference_markdown() -> str:
    """The variable reference table for `sop/README.md` (a test keeps them in step)."""
    rows = [
        "| 变量 variable | 说明 | 示例 sample | 提供给 available in |",
        "| --- | --- | --- | --- |",
    ]
    listed: set[str] = set()
    for variable in VARIABLES:
        rows.append(f"| `{variable.name}` | {variable.doc} | | {variable.available_in} |")
        if variable.name in listed:  # the second `group`: same fields as the first
            rows[-1] = rows[-1].replace(" | |", " (fields as above 字段同上) | |", 1)
            continue
        listed.add(variable.name)
        for path in field_paths(variable.name, variable.sample):
            if path == variable.name:
                continue
            rows.append(f"| `{path}` | {FIELD_DOCS[path]} | {_sample_text(variable, path)} | |")
        if not isinstance(variable.sample, dict | list):
            rows[-1] = (
                f"| `{variable.name}` | {variable.doc} | {variable.sample} | {variable.available_in} |"
            )
    return "\n".join(rows)


def _sample_text(variable: Variable, path: str) -> str:
    value: Any = {variable.name: variable.sample}
    for part in path.split("."):
        value = value[part.removesuffix("[]")]
        if part.endswith("[]"):
            value = value[0]
    return f"{len(value)} 项" if isinstance(value, list) else str(value)


def step_context(spec: SopSpec, step: str) -> dict[str, Any]:
    """The sample context of one step of `spec` (its own id and title as `sop`)."""
    return sample_context(
        spec.kind, spec.channel, step, spec.on, sop={"id": spec.id, "title": spec.title}
    )


def step_basics(day: dt.date, sop_id: str, sop_title: str) -> dict[str, Any]:
    """The variables every step's context has: `sop`, `today` and `weekday`."""
    return {"today": day, "weekday": weekday_cn(day), "sop": {"id": sop_id, "title": sop_title}}
