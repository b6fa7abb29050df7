"""Uplift against the holdout: treated vs held-out conversion per SOP, with a 95 % Wald interval."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping

from sqlalchemy import and_, case, distinct, func, or_, select
from sqlmodel import Session, col

from models.delivery import HOLDOUT, Delivery, DeliveryStatus
from review.attribution import converted_within, window_of
from review.model import Uplift, rate
from review.period import Period, in_period, sop_filter
from review.statuses import TREATED

Z_95 = 1.959963984540054


def wald_interval(
    treated: int, treated_converted: int, control: int, control_converted: int
) -> tuple[float, float, float] | None:
    """Difference of two proportions with its 95 % Wald interval; None without both arms."""
    if treated == 0 or control == 0:
        return None
    p1, p0 = treated_converted / treated, control_converted / control
    spread = Z_95 * math.sqrt(p1 * (1 - p1) / treated + p0 * (1 - p0) / control)
    return p1 - p0, p1 - p0 - spread, p1 - p0 + spread


def uplift(
    session: Session, period: Period, sop_id: str | None, windows: Mapping[str, int]
) -> list[Uplift]:
    """Per SOP with a holdout: conversion within the window after the planned touch, treated vs control."""
    skipped = DeliveryStatus.SKIPPED.value
    with_holdout = (
        select(distinct(col(Delivery.sop_id)))
        .where(
            col(Delivery.status) == skipped,
            col(Delivery.reason) == HOLDOUT,
            in_period(Delivery.planned_at, period),
            sop_filter(sop_id),
        )
        .scalar_subquery()
    )
    is_control = col(Delivery.status) == skipped
    converted = converted_within(
        Delivery.planned_at, Delivery.customer_id, window_of(Delivery.sop_id, windows)
    )
    statement = (
        select(
            col(Delivery.sop_id),
            case((is_control, 1), else_=0).label("control"),
            func.count(),
            func.sum(case((converted, 1), else_=0)),  # type: ignore[arg-type]
        )
        .where(
            col(Delivery.sop_id).in_(with_holdout),
            col(Delivery.target_kind) == "customer",
            in_period(Delivery.planned_at, period),
            or_(
                and_(col(Delivery.status) == skipped, col(Delivery.reason) == HOLDOUT),
                col(Delivery.status).in_([s.value for s in TREATED]),
            ),
        )
        .group_by(col(Delivery.sop_id), "control")
    )
    arms: dict[str, dict[int, tuple[int, int]]] = defaultdict(dict)
    for sop, control, n, converted_n in session.execute(statement):
        arms[sop][int(control)] = (int(n), int(converted_n or 0))
    result = []
    for sop in sorted(arms):
        treated, treated_converted = arms[sop].get(0, (0, 0))
        control, control_converted = arms[sop].get(1, (0, 0))
        interval = wald_interval(treated, treated_converted, control, control_converted)
        result.append(
            Uplift(
                sop_id=sop,
                treated=treated,
                treated_converted=treated_converted,
                control=control,
                control_converted=control_converted,
                treated_rate=rate(treated_converted, treated),
                control_rate=rate(control_converted, control),
                uplift=interval[0] if interval else None,
                ci_low=interval[1] if interval else None,
                ci_high=interval[2] if interval else None,
            )
        )
    return result
