"""Build a review (复盘) of a period: attribute its orders, compute every KPI, judge the targets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from core.clock import utcnow
from models.db import session_scope
from review.after_touch import after_touch
from review.attribution import DEFAULT_WINDOW_HOURS, attribute_orders, sop_windows
from review.breakdowns import reached_by_sop, rollup, skip_reasons
from review.customers import daily_active_ratio, loyalty
from review.directory import Directory
from review.holdout import uplift
from review.kpis import KPIS, headline_values, judge, kpi_labels
from review.model import Review, Row, Uplift
from review.moments import moments_posting
from review.outcomes import attributed_grain, daily_series, outcome_grain
from review.period import Period
from review.staff import staff_confirmation
from review.targets import load_targets
from soplang.spec import SopSpec

# Told how far the review has got: a fraction from 0 to 1 and what it is doing.
Progress = Callable[[float, str], None]

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


@dataclass
class Measures:
    """What the review computes without the attributions, in its own read-only session."""

    directory: Directory
    outcomes: list[Row]
    uplift: list[Uplift]
    after_touch: list[Row]
    loyalty: list[Row]
    all_orders: int
    active_ratio: float | None


def measure(period: Period, sop_id: str | None, windows: Mapping[str, int]) -> Measures:
    """Outcomes, uplift, costs after touches, loyalty and activity: nothing here reads attributions."""
    with session_scope(readonly=True) as session:
        directory = Directory.read(session)
        outcomes = outcome_grain(session, period, sop_id)
        segments, all_orders = loyalty(session, period)
        return Measures(
            directory=directory,
            outcomes=outcomes,
            uplift=uplift(session, period, sop_id, windows),
            after_touch=after_touch(session, period, sop_id, reached_by_sop(outcomes, directory)),
            loyalty=segments,
            all_orders=all_orders,
            active_ratio=daily_active_ratio(session, period),
        )


def attribute(period: Period, windows: Mapping[str, int], now: dt.datetime | None) -> int:
    """Store the attributions of the period's orders (one write transaction)."""
    with session_scope() as session:
        return attribute_orders(period.start_utc, period.end_utc, windows, session=session, now=now)


def build_review(
    period: Period,
    *,
    specs: Iterable[SopSpec],
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
    targets = load_targets(targets_path, kpi_labels())
    windows = sop_windows(specs)
    kinds = {spec.id: spec.kind for spec in specs}
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
        review.tables = rollup(
            measures.outcomes, attributed_grain(session, period, sop_id), measures.directory
        )
        review.daily = daily_series(session, period, sop_id, measures.outcomes)
        review.staff_confirmation = staff_confirmation(session, measures.outcomes)
        review.tables["moments"] = moments_posting(session, period, sop_id)  # 朋友圈 per store
    for row in review.staff_confirmation:
        row["staff_name"] = measures.directory.staff_name(row["sender"])
    review.skip_reasons = skip_reasons(measures.outcomes)
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
