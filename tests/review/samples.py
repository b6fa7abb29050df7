"""Reviews for the report tests: a busy week, a quiet one, and an empty month."""

from __future__ import annotations

import datetime as dt

from review.model import Kpi, Review, Uplift

SCRIPT = "<script>alert(1)</script>"


def outcomes(planned: int, sent: int, orders: int, revenue_fen: int) -> dict[str, object]:
    return {
        "planned": planned,
        "sent": sent,
        "delivered": sent - 3,
        "not_a_friend": 2,
        "over_wecom_limit": 0,
        "unconfirmed": 1,
        "failed": 0,
        "unknown": 0,
        "skipped": planned - sent,
        "orders": orders,
        "revenue_fen": revenue_fen,
        "conversion_rate": orders / (sent - 3),
    }


def sample_review() -> Review:
    days = [dt.date(2024, 11, 1) + dt.timedelta(days=n) for n in range(3)]
    return Review(
        starts=dt.date(2024, 11, 1),
        ends=dt.date(2024, 11, 7),
        sop_id=None,
        generated_at=dt.datetime(2024, 11, 8, 1, 30, tzinfo=dt.UTC),
        headline=[
            Kpi("open_rate", "Open rate", 0.162, "rate", target=0.15, comparison=">=", met=True),
            Kpi(
                "conversion_rate",
                "Conversion (orders attributed / delivered)",
                0.021,
                "rate",
                target=0.03,
                comparison=">=",
                met=False,
            ),
            Kpi("contacts_added", "Contacts added", 1234, "count"),
            Kpi("revenue", "Revenue attributed", 1234560, "fen"),
        ],
        tables={
            "region": [
                {"region": "华东", **outcomes(900, 850, 20, 880000)},
                {"region": "华南", **outcomes(400, 390, 6, 354560)},
            ],
            "sop": [
                {
                    "sop_id": "double-11-warmup",
                    "title": "双11预热",
                    **outcomes(1000, 950, 21, 1000000),
                },
                {"sop_id": "dormant-recall", "title": "沉睡唤醒", **outcomes(300, 290, 5, 234560)},
            ],
            "day": [{"day": day, **outcomes(400, 380, 8, 400000)} for day in days],
            "staff": [
                {"sender": f"staff-{n:03d}", **outcomes(100 + n, 90 + n, 1, 9900)}
                for n in range(60)
            ],
        },
        skip_reasons=[
            {"reason": "capped (lost to dormant-recall)", "count": 120},
            {"reason": "已退订", "count": 35},
            {"reason": SCRIPT, "count": 2},
        ],
        uplift=[
            Uplift("double-11-warmup", 950, 24, 100, 1, 0.0253, 0.01, 0.0153, 0.003, 0.028),
            Uplift("dormant-recall", 290, 5, 30, 1, 0.0172, 0.0333, -0.0161, -0.08, 0.047),
            Uplift("welcome", 80, 2, 0, 0, 0.025, None, None, None, None),
        ],
        daily=[
            {
                "day": day.isoformat(),
                "sent": 380,
                "delivered": 377,
                "orders": 8 + n,
                "revenue_fen": 400000,
            }
            for n, day in enumerate(days)
        ],
        after_touch=[
            {
                "sop_id": "double-11-warmup",
                "touched": 947,
                "deleted_7d": 9,
                "opted_out_7d": 4,
                "deletion_rate": 9 / 947,
                "opt_out_rate": 4 / 947,
            },
            {
                "sop_id": "dormant-recall",
                "touched": 287,
                "deleted_7d": 6,
                "opted_out_7d": 3,
                "deletion_rate": 6 / 287,
                "opt_out_rate": 3 / 287,
            },
        ],
        loyalty=[
            {
                "segment": "group members",
                "customers": 5000,
                "buyers": 800,
                "orders": 3360,
                "repurchase_rate": 0.42,
                "orders_per_buyer": 4.2,
                "average_order_fen": 12800,
            },
            {
                "segment": "non-members",
                "customers": 20000,
                "buyers": 1500,
                "orders": 2100,
                "repurchase_rate": 0.12,
                "orders_per_buyer": 1.4,
                "average_order_fen": 10000,
            },
        ],
        staff_confirmation=[
            {
                "sender": "王芳",
                "tasks": 12,
                "confirmed": 11,
                "confirmation_rate": 11 / 12,
                "median_delay_seconds": 1500,
            }
        ],
        notes=["Orders count when placed within 72 h of a delivered touch (last touch wins)."],
    )


def empty_review() -> Review:
    """A period without touches: like a real review, its daily series has a row of zeros per day."""
    return Review(
        starts=dt.date(2024, 11, 1),
        ends=dt.date(2024, 11, 30),
        sop_id="double-11-warmup",
        generated_at=dt.datetime(2024, 12, 1, tzinfo=dt.UTC),
        daily=[
            {"day": f"2024-11-{n:02d}", "sent": 0, "delivered": 0, "orders": 0, "revenue_fen": 0}
            for n in range(1, 31)
        ],
    )


def quiet_review() -> Review:
    """A few touches and no orders: small counts on both axes, no uplift measured, nobody left."""
    review = sample_review()
    review.daily = [
        {"day": f"2024-11-0{n}", "sent": n % 2 + 1, "delivered": 1, "orders": 0, "revenue_fen": 0}
        for n in range(1, 8)
    ]
    review.skip_reasons = [{"reason": "已退订", "count": 1}]
    review.uplift = [Uplift("welcome", 3, 0, 0, 0, 0.0, None, None, None, None)]
    review.after_touch = [
        {
            "sop_id": "welcome",
            "touched": 3,
            "deleted_7d": 0,
            "opted_out_7d": 0,
            "deletion_rate": 0.0,
            "opt_out_rate": 0.0,
        }
    ]
    return review
