"""Build a review (复盘) of a period: attribute its orders, compute every KPI, judge the targets."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from core.clock import utcnow
from models.db import session_scope
from review import kpis
from review.attribution import DEFAULT_WINDOW_HOURS, attribute_orders, sop_windows
from review.kpis import Period, rate
from review.model import Kpi, Review, Row, Uplift
from review.targets import Target, load_targets

Progress = Callable[[float, str], None]


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

METHOD_NOTES = [
    "Attribution is last-touch: an order (paid or shipped, placed in the period) goes to the "
    "latest delivered touch to the customer, or to a group they belong to, sent within the SOP's "
    f"`attribution.window` before the order (default {DEFAULT_WINDOW_HOURS} h). Attributions "
    "are stored in the `attribution` table and recomputed for the period on every review.",
    "Conversion = attributed orders / people reached; a delivered 1:1 touch reaches one person, "
    "a delivered group touch reaches the group's members.",
    "Uplift compares conversion (any order within the window after the planned touch) of rows "
    "past the holdout guard (treated, whatever WeCom did with them: intention to treat) with the "
    "held-out rows (control); the interval is the 95 % Wald interval of the difference of two "
    "proportions, p1 − p0 ± 1.96·√(p1(1−p1)/n1 + p0(1−p0)/n0).",
    "Deletions and opt-outs: people who deleted the contact or opted out within 7 days after an "
    "SOP's delivered touch, per person reached (a person touched twice counts twice, like an "
    "email unsubscribe rate per delivered message).",
    "Rows are counted on the local day they were planned; orders on the day they were placed. "
    "A 1:1 touch counts for the store of the advisor who sent it and that store's city; a group "
    "touch for the group's store and region.",
]


def judge(name: str, value: float | None, targets: Mapping[str, Target]) -> Kpi:
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
    sops = review.tables.get("sop", [])
    total = {c: sum(row[c] for row in sops) for c in kpis.OUTCOME_COLUMNS}
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


@dataclass
class Measures:
    """What the review computes without the attributions, in its own read-only session."""

    directory: kpis.Directory
    outcomes: list[Row]
    uplift: list[Uplift]
    after_touch: list[Row]
    loyalty: list[Row]
    all_orders: int
    active_ratio: float | None


def measure(period: Period, sop_id: str | None, windows: Mapping[str, int]) -> Measures:
    """Outcomes, uplift, costs after touches, loyalty and activity: nothing here reads attributions."""
    with session_scope(readonly=True) as session:
        directory = kpis.Directory.read(session)
        outcomes = kpis.outcome_grain(session, period, sop_id)
        loyalty, all_orders = kpis.loyalty(session, period)
        return Measures(
            directory=directory,
            outcomes=outcomes,
            uplift=kpis.uplift(session, period, sop_id, windows),
            after_touch=kpis.after_touch(
                session, period, sop_id, kpis.reached_by_sop(outcomes, directory)
            ),
            loyalty=loyalty,
            all_orders=all_orders,
            active_ratio=kpis.daily_active_ratio(session, period),
        )


def attribute(period: Period, windows: Mapping[str, int], now: dt.datetime | None) -> int:
    """Store the attributions of the period's orders (one write transaction)."""
    with session_scope() as session:
        return attribute_orders(period.start_utc, period.end_utc, windows, session=session, now=now)


def build_review(
    period: Period,
    *,
    specs: Iterable[object],
    targets_path: Path,
    sop_id: str | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> Review:
    """Attribute the period's orders (stored) while measuring the rest, then put the review together.

    The two halves run side by side on their own connections: the database does the work and
    releases the GIL, so a month of a million customers takes the longer half, not the sum.
    """
    report = progress or (lambda _fraction, _stage: None)
    specs = list(specs)
    targets = load_targets(targets_path, {name: d.label for name, d in KPIS.items()})
    windows = sop_windows(specs)
    kinds = {str(s.id): str(s.kind) for s in specs}
    review = Review(
        starts=period.starts, ends=period.ends, sop_id=sop_id, generated_at=now or utcnow()
    )
    report(0.0, "attributing orders and counting outcomes")
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="review") as pool:
        attributing = pool.submit(attribute, period, windows, now)
        measuring = pool.submit(measure, period, sop_id, windows)
        for done in as_completed((attributing, measuring)):
            report(0.45, "orders attributed" if done is attributing else "outcomes counted")
        attributed, measures = attributing.result(), measuring.result()
    report(0.9, "putting the review together")
    with session_scope(readonly=True) as session:
        review.tables = kpis.rollup(
            measures.outcomes, kpis.attributed_grain(session, period, sop_id), measures.directory
        )
        review.daily = kpis.daily_series(session, period, sop_id, measures.outcomes)
        review.staff_confirmation = kpis.staff_confirmation(session, measures.outcomes)
    for row in review.staff_confirmation:
        row["staff_name"] = measures.directory.staff_name(row["sender"])
    review.skip_reasons = kpis.skip_reasons(measures.outcomes)
    review.uplift = measures.uplift
    review.after_touch = measures.after_touch
    review.loyalty = measures.loyalty
    values = headline_values(review, measures.all_orders, measures.active_ratio, kinds)
    review.headline = [judge(name, values[name], targets) for name in KPIS]
    review.notes = [
        *METHOD_NOTES,
        f"{attributed:,} orders of the period were attributed (stored in `attribution`).",
    ]
    report(1.0, "done")
    return review
