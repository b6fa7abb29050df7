"""The posting rate of moments (朋友圈) per store: of the moment tasks staff received in the period,
how many they posted (`delivered`), did not post in time (`unconfirmed`) or may still post."""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlmodel import Session, col

from models.delivery import Delivery, DeliveryStatus
from models.people import Staff, Store
from review.model import Row, rate
from review.period import Period, in_period, sop_filter

MOMENTS = "moments"
NO_STORE = "—"


def moments_posting(session: Session, period: Period, sop_id: str | None = None) -> list[Row]:
    """Per store: staff asked, moment tasks, posted, not posted, still open, and the posting rate
    (posted / tasks WeCom made); the lowest rate first."""
    status = col(Delivery.status)
    posted = func.sum(case((status == DeliveryStatus.DELIVERED.value, 1), else_=0))
    missed = func.sum(case((status == DeliveryStatus.UNCONFIRMED.value, 1), else_=0))
    open_ = func.sum(case((status == DeliveryStatus.SENT.value, 1), else_=0))
    statement = (
        select(
            Store.code,
            Store.name,
            func.count(func.distinct(Delivery.target_id)),
            posted + missed + open_,
            posted,
            missed,
            open_,
        )
        .select_from(Delivery)
        .outerjoin(Staff, col(Staff.userid) == col(Delivery.target_id))
        .outerjoin(Store, col(Store.id) == col(Staff.store_id))
        .where(
            col(Delivery.channel) == MOMENTS,
            in_period(col(Delivery.planned_at), period),
            sop_filter(sop_id),
        )
        .group_by(Store.code, Store.name)
    )
    rows: list[Row] = []
    for code, name, staff, tasks, done, not_done, waiting in session.execute(statement).all():
        rows.append(
            {
                "store": code or NO_STORE,
                "store_name": name or NO_STORE,
                "staff": int(staff or 0),
                "moment_tasks": int(tasks or 0),
                "posted": int(done or 0),
                "not_posted": int(not_done or 0),
                "pending": int(waiting or 0),
                "posting_rate": rate(int(done or 0), int(tasks or 0)),
            }
        )
    return sorted(
        rows, key=lambda r: (r["posting_rate"] is None, r["posting_rate"] or 0, r["store"])
    )
