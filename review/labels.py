"""What the review's reports call things: Chinese for the operators, with the English alongside."""

from __future__ import annotations

import re
from dataclasses import dataclass

from review.model import Kpi


@dataclass(frozen=True)
class Label:
    """A label in Chinese, with its English (or nothing) to show alongside."""

    zh: str
    en: str = ""

    def __str__(self) -> str:
        return f"{self.zh} {self.en}" if self.en else self.zh


NO_DATA = Label("本期无数据", "· no data this period")

# A table's columns, by the name the review's rows use for them.
COLUMNS: dict[str, Label] = {
    "#": Label("#"),
    "sop": Label("SOP"),
    "sop_id": Label("SOP"),
    "title": Label("标题", "title"),
    "step": Label("步骤", "step"),
    "target_kind": Label("对象", "target"),
    "channel": Label("渠道", "channel"),
    "region": Label("区域", "region"),
    "store": Label("门店", "store"),
    "sender": Label("员工账号", "staff"),
    "staff_name": Label("员工", "name"),
    "day": Label("日期", "day"),
    "planned": Label("计划", "planned"),
    "sent": Label("已发送", "sent"),
    "delivered": Label("已送达", "delivered"),
    "not_a_friend": Label("非好友", "not a friend"),
    "over_wecom_limit": Label("超企微上限", "over WeCom limit"),
    "unconfirmed": Label("员工未确认", "unconfirmed"),
    "awaiting_results": Label("待回执", "awaiting results"),
    "failed": Label("失败", "failed"),
    "unknown": Label("状态未知", "unknown"),
    "skipped": Label("跳过", "skipped"),
    "not_sent_yet": Label("尚未发送", "not sent yet"),
    "reached": Label("触达人数", "reached"),
    "orders": Label("订单", "orders"),
    "revenue_fen": Label("销售额", "revenue"),
    "conversion_rate": Label("转化率", "conversion"),
    "touched": Label("触达人次", "reached"),
    "deleted_7d": Label("7 天内删除好友", "deleted ≤ 7 d"),
    "opted_out_7d": Label("7 天内退订", "opted out ≤ 7 d"),
    "deletion_rate": Label("删除率", "deletion rate"),
    "opt_out_rate": Label("退订率", "opt-out rate"),
    "segment": Label("人群", "segment"),
    "customers": Label("客户数", "customers"),
    "buyers": Label("购买人数", "buyers"),
    "repurchase_rate": Label("复购率", "repurchase rate"),
    "orders_per_buyer": Label("人均订单", "orders per buyer"),
    "average_order_fen": Label("客单价", "average order"),
    "tasks": Label("群发任务", "tasks"),
    "confirmed": Label("已确认", "confirmed"),
    "confirmation_rate": Label("确认率", "confirmed share"),
    "median_delay_seconds": Label("确认用时中位数", "median delay"),
    "reason": Label("原因", "reason"),
    "count": Label("人次", "count"),
    "share_rate": Label("占比", "share of skipped"),
    "treated": Label("干预组", "treated"),
    "treated_converted": Label("干预组转化", "treated converted"),
    "treated_rate": Label("干预组转化率", "treated rate"),
    "control": Label("对照组", "holdout"),
    "control_converted": Label("对照组转化", "holdout converted"),
    "control_rate": Label("对照组转化率", "holdout rate"),
    "uplift": Label("提升", "uplift"),
    "ci_low": Label("95% 置信区间下限", "CI low"),
    "ci_high": Label("95% 置信区间上限", "CI high"),
}

# Values that are words of the review's own vocabulary, by column.
VALUES: dict[str, dict[str, Label]] = {
    "segment": {
        "group members": Label("社群成员", "group members"),
        "non-members": Label("非社群成员", "non-members"),
    },
    "target_kind": {"group": Label("客户群", "group"), "customer": Label("客户", "1:1")},
    "channel": {
        "group": Label("客户群群发", "group"),
        "customer": Label("客户群发", "1:1"),
        "robot": Label("群机器人", "robot"),
    },
    "day": {"earlier": Label("更早", "earlier")},
}

# The headline KPIs by their name in targets.yaml; the English is the KPI's own label.
KPIS: dict[str, str] = {
    "planned": "计划触达",
    "sent": "已发送(企微已受理)",
    "delivered": "已送达",
    "delivery_rate": "送达率",
    "reached": "触达人数(1:1 + 群成员)",
    "conversion_rate": "转化率(归因订单 / 触达人数)",
    "campaign_conversion_rate": "促销 SOP 转化率",
    "attributed_orders": "归因订单",
    "attributed_revenue_fen": "归因销售额",
    "private_domain_order_share": "私域引导订单占比",
    "daily_active_ratio": "日活跃率(均值)",
    "member_orders_per_buyer": "社群成员人均订单",
    "member_basket_lift": "社群成员客单价 vs 非成员",
    "deletion_rate_7d": "触达后 7 天内删除好友率",
    "opt_out_rate_7d": "触达后 7 天内退订率",
    "staff_confirmation_rate": "员工确认群发比例",
    "staff_confirmation_median_seconds": "员工确认用时中位数",
}

SECTIONS: dict[str, Label] = {
    "review": Label("复盘", "Review"),
    "headline": Label("核心指标", "Headline"),
    "breakdowns": Label("分维度", "Breakdowns"),
    "skip_reasons": Label("跳过原因", "Skip reasons"),
    "uplift": Label("对照组提升", "Uplift vs holdout"),
    "after_touch": Label("触达后的流失", "After-touch costs"),
    "loyalty": Label("忠诚度:社群成员 vs 非成员", "Loyalty: group members vs non-members"),
    "staff_confirmation": Label("员工确认群发", "Staff confirmation"),
    "method": Label("方法说明", "Method"),
}

BREAKDOWN_TITLES: dict[str, Label] = {
    "sop": Label("按 SOP", "by SOP"),
    "step": Label("按步骤", "by step"),
    "channel": Label("按渠道", "by channel"),
    "region": Label("按区域", "by region"),
    "store": Label("按门店", "by store"),
    "staff": Label("按员工", "by staff member"),
    "day": Label("按日期", "by day"),
    "moments": Label("朋友圈发表率(按门店)", "moments posting rate by store"),
}

MARKS = {True: "✓ 达标 met", False: "✗ 未达标 missed"}
NO_TARGET = "无目标 no target"
NOT_MEASURED = "无数据 no data"
READINGS = {
    "better": "优于对照组 better than holdout",
    "worse": "差于对照组 worse than holdout",
    "same": "与对照组无显著差异 not distinguishable from holdout",
    "no_holdout": "未测量(无对照组) not measured (no holdout)",
    "not_measured": "未测量 not measured",
    "no_ci": "无置信区间 no confidence interval",
}
_CHINESE_ASIDE = re.compile(r"\s*\([^)]*[\u3400-\u9fff][^)]*\)")


def column_label(column: str) -> Label:
    """A column's header: "revenue_fen" → 销售额 revenue; an unknown "store_id" → "Store id"."""
    if column in COLUMNS:
        return COLUMNS[column]
    return Label(
        column.removesuffix("_fen").removesuffix("_seconds").replace("_", " ").capitalize()
    )


def value_label(column: str, value: str) -> str:
    """A value in the review's own words ("group members") in Chinese with the English; else as is."""
    label = VALUES.get(column, {}).get(value)
    return str(label) if label else value


def kpi_label(kpi: Kpi) -> Label:
    """A KPI's name in Chinese, its English label alongside (without a Chinese aside of its own)."""
    chinese = KPIS.get(kpi.name)
    if chinese is None:
        return Label(kpi.label)
    return Label(chinese, _CHINESE_ASIDE.sub("", kpi.label).strip())
