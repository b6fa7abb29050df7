"""PostgreSQL's COPY fast path for Delivery inserts: values arrive exactly, existing keys are skipped."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from models.bulk import COPY_FROM_ROWS, DELIVERY, insert_returning
from models.bulk_copy import _staging_name
from models.db import session_scope
from models.deliveries import DELIVERY_COLUMNS, Occurrence, PlannedTarget, record_planned
from models.delivery import Delivery

pytestmark = pytest.mark.postgres
NOW = dt.datetime(2026, 12, 2, 1, 30, 15, 123456, tzinfo=dt.UTC)
AWKWARD = ["tab\there", "line\nbreak\r", "back\\slash", "\\N", "", "张三 的群 🎉", "a,b;'c\""]
OCCURRENCE = Occurrence("bulk", "s1", "2026-12-02", "wecom", "run-1")


def _targets(count: int, *, start: int = 0) -> list[PlannedTarget]:
    """`count` customer targets; every seventh has an awkward reason, every third no sender."""
    return [
        PlannedTarget(
            "customer",
            f"wm{i:06d}",
            None if i % 3 == 0 else f"staff-{i % 5}",
            customer_id=None,
            status="skipped" if i % 7 == 0 else "planned",
            reason=AWKWARD[i % len(AWKWARD)] if i % 7 == 0 else None,
            not_before=NOW + dt.timedelta(hours=i % 4) if i % 2 else None,
        )
        for i in range(start, start + count)
    ]


def _rows(targets: list[PlannedTarget]) -> list[tuple]:
    o = OCCURRENCE
    shared = (o.sop_id, o.step, o.occurrence, o.channel, o.flow_run_id, NOW, NOW)
    return [(o.key(t.target_kind, t.target_id), *shared, *t) for t in targets]


def test_every_value_arrives_exactly_as_given_through_copy(postgres_url: str) -> None:
    """Tabs, newlines, backslashes, a literal \\N, empty text, Chinese, NULLs and aware times."""
    targets = _targets(COPY_FROM_ROWS + 40)
    with session_scope() as session:
        inserted = insert_returning(
            session, DELIVERY, DELIVERY_COLUMNS, _rows(targets), ("id", "target_id", "status")
        )
        staging = _staging_name("delivery", DELIVERY_COLUMNS)
        assert (
            session.connection()
            .exec_driver_sql(f"SELECT to_regclass('pg_temp.{staging}') IS NOT NULL")
            .scalar()
        ), "the batch did not go through COPY"
    assert sorted(t for _, t, _ in inserted) == [t.target_id for t in targets]

    with session_scope() as session:
        found = {row.target_id: row for row in session.execute(select(Delivery)).scalars()}
    for t in targets:
        row = found[t.target_id]
        assert (row.sender, row.status, row.reason, row.not_before) == (
            t.sender,
            t.status,
            t.reason,
            t.not_before,
        )
        assert row.planned_at == NOW and row.idempotency_key.endswith(f":customer:{t.target_id}")


def test_existing_keys_and_repeats_in_one_batch_are_skipped_and_left_as_they_were(
    postgres_url: str,
) -> None:
    first = _targets(COPY_FROM_ROWS)
    with session_scope() as session:
        insert_returning(session, DELIVERY, DELIVERY_COLUMNS, _rows(first), ("id",))
        session.connection().exec_driver_sql("UPDATE delivery SET status = 'sent'")

    again = first + _targets(COPY_FROM_ROWS, start=COPY_FROM_ROWS)
    with session_scope() as session:
        inserted = insert_returning(
            session, DELIVERY, DELIVERY_COLUMNS, _rows(again + again[-10:]), ("target_id",)
        )
    assert sorted(t for (t,) in inserted) == [t.target_id for t in again[COPY_FROM_ROWS:]]
    with session_scope() as session:
        statuses = dict(session.execute(select(Delivery.target_id, Delivery.status)).tuples().all())
    assert len(statuses) == 2 * COPY_FROM_ROWS
    assert {statuses[t.target_id] for t in first} == {"sent"}


def test_two_batches_in_one_transaction_each_report_every_target(postgres_url: str) -> None:
    """The staging table is emptied between batches of one transaction, not only at commit."""
    targets = _targets(COPY_FROM_ROWS * 2)
    with session_scope() as session:
        first = record_planned(OCCURRENCE, targets[:COPY_FROM_ROWS], session=session, now=NOW)
        second = record_planned(OCCURRENCE, targets, session=session, now=NOW)
    assert all(touch.new for touch in first) and len(first) == COPY_FROM_ROWS
    assert sorted(t.target_id for t in second) == [t.target_id for t in targets]
    assert sum(touch.new for touch in second) == COPY_FROM_ROWS
    with session_scope() as session:
        assert len(session.execute(select(Delivery.id)).all()) == 2 * COPY_FROM_ROWS
