"""The headline KPIs: what each is called, its value from a review's tables, and its target's verdict."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass

from review.breakdowns import OUTCOME_COLUMNS
from review.model import Kpi, Review, rate
from review.targets import Target


@dataclass(frozen=True)
class KpiDefinition:
    label: str
    unit: str


# Every headline KPI, by the name targets.yaml uses for it.
KPIS: dict[str, KpiDefinition] = {
    "planned": KpiDefinition("Touches planned", "count"),
    "sent": KpiDefinition("Sent (WeCom accepted)", "count"),
    "delivered": KpiDefinition("Delivered", "count"),
    "delivery_rate": KpiDefinition("Delivered / sent", "rate"),
    "reached": KpiDefinition("People reached (1:1 + group members)", "count"),
    "conversion_rate": KpiDefinition("Conversion (attributed orders / people reached)", "rate"),
    "campaign_conversion_rate": KpiDefinition("Conversion of promotion SOPs", "rate"),
    "attributed_orders": KpiDefinition("Orders attributed to a touch", "count"),
    "attributed_revenue_fen": KpiDefinition("Attributed revenue", "fen"),
    "private_domain_order_share": KpiDefinition(
        "Share of all orders attributed (私域引导)", "rate"
    ),
    "daily_active_ratio": KpiDefinition("Daily active ratio (mean)", "rate"),
    "member_orders_per_buyer": KpiDefinition("Orders per buying group member", "ratio"),
    "member_basket_lift": KpiDefinition("Group members' basket vs non-members'", "rate"),
    "deletion_rate_7d": KpiDefinition("Contacts deleted within 7 days of a touch", "rate"),
    "opt_out_rate_7d": KpiDefinition("Opt-outs within 7 days of a touch", "rate"),
    "staff_confirmation_rate": KpiDefinition("Mass messages confirmed by staff", "rate"),
    "staff_confirmation_median_seconds": KpiDefinition(
        "Median staff confirmation delay", "seconds"
    ),
}


def judge(name: str, value: float | None, targets: Mapping[str, Target]) -> Kpi:
    """The KPI `name` with its value, and met or missed when targets.yaml sets a target for it."""
    definition = KPIS[name]
    target = targets.get(name)
    met = target.met_by(value) if target and value is not None else None
    return Kpi(
        name=name,
        label=definition.label,
        value=value,
        unit=definition.unit,
        target=target.value if target else None,
        comparison=target.comparison if target else None,
        met=met,
    )


def headline_values(
    review: Review, all_orders: int, active_ratio: float | None, kinds: Mapping[str, str]
) -> dict[str, float | None]:
    """Every headline KPI's value from the review's tables; `kinds` maps SOP id to its kind."""
    sops = review.tables.get("sop", [])
    total = {c: sum(row[c] for row in sops) for c in OUTCOME_COLUMNS}
    promotion = [row for row in sops if kinds.get(row["sop_id"]) == "promotion"]
    members = next((r for r in review.loyalty if r["segment"] == "group members"), None)
    others = next((r for r in review.loyalty if r["segment"] == "non-members"), None)
    basket = (
        rate(members["average_order_fen"], others["average_order_fen"])
        if members and others and members["average_order_fen"] is not None
        else None
    )
    touched = sum(row["touched"] for row in review.after_touch)
    tasks = sum(row["tasks"] for row in review.staff_confirmation)
    delays = [
        row["median_delay_seconds"]
        for row in review.staff_confirmation
        if row["median_delay_seconds"] is not None
    ]
    return {
        "planned": total["planned"],
        "sent": total["sent"],
        "delivered": total["delivered"],
        "delivery_rate": rate(total["delivered"], total["sent"]),
        "reached": total["reached"],
        "conversion_rate": rate(total["orders"], total["reached"]),
        "campaign_conversion_rate": rate(
            sum(r["orders"] for r in promotion), sum(r["reached"] for r in promotion)
        ),
        "attributed_orders": total["orders"],
        "attributed_revenue_fen": total["revenue_fen"],
        "private_domain_order_share": rate(total["orders"], all_orders),
        "daily_active_ratio": active_ratio,
        "member_orders_per_buyer": members["orders_per_buyer"] if members else None,
        "member_basket_lift": basket - 1 if basket is not None else None,
        "deletion_rate_7d": rate(sum(r["deleted_7d"] for r in review.after_touch), touched),
        "opt_out_rate_7d": rate(sum(r["opted_out_7d"] for r in review.after_touch), touched),
        "staff_confirmation_rate": rate(
            sum(row["confirmed"] for row in review.staff_confirmation), tasks
        ),
        "staff_confirmation_median_seconds": statistics.median(delays) if delays else None,
    }


def kpi_labels() -> dict[str, str]:
    """Each KPI's name and label, as the targets file loader wants them."""
    return {name: definition.label for name, definition in KPIS.items()}
