"""SQLite inserts count their new rows' ids instead of returning them: each target gets the id its
row really has, whether every row was new, some existed, or the batch spans several statements."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from models.bulk import DELIVERY, IN_LIMIT, insert_returning
from models.db import session_scope
from models.deliveries import DELIVERY_COLUMNS, Occurrence, PlannedTarget, record_planned
from models.delivery import Delivery

NOW = dt.datetime(2026, 12, 2, 2, 0, tzinfo=dt.UTC)
OCCURRENCE = Occurrence("numbered", "s1", "2026-12-02", "wecom", "run-1")
# More rows than one multi-row INSERT holds (3 * IN_LIMIT bound values / 17 columns).
MANY = 3 * IN_LIMIT // len(DELIVERY_COLUMNS) * 2 + 7


def _targets(numbers: range | list[int]) -> list[PlannedTarget]:
    return [
        PlannedTarget("customer", f"wm{i:06d}", f"staff-{i % 3}", status="planned") for i in numbers
    ]


def _ids_in_database() -> dict[str, int]:
    with session_scope(readonly=True) as session:
        return dict(session.execute(select(Delivery.target_id, Delivery.id)).tuples().all())


def test_every_new_row_gets_the_id_it_has_in_the_database(database_url: str) -> None:
    with session_scope() as session:
        recorded = record_planned(OCCURRENCE, _targets(range(MANY)), session=session, now=NOW)
    assert {row.target_id: row.delivery_id for row in recorded} == _ids_in_database()
    assert len(recorded) == MANY and all(row.new for row in recorded)


def test_rows_that_existed_are_told_apart_from_new_ones(database_url: str) -> None:
    with session_scope() as session:
        record_planned(OCCURRENCE, _targets(range(0, MANY, 2)), session=session, now=NOW)
        session.connection().exec_driver_sql("UPDATE delivery SET status = 'sent'")
    # Every other target exists; the batch also repeats a few of its own new targets.
    again = _targets(list(range(MANY)) + [1, 3, 5])
    with session_scope() as session:
        recorded = record_planned(OCCURRENCE, again, session=session, now=NOW)
    in_database = _ids_in_database()
    assert len(in_database) == MANY
    assert {row.target_id: row.delivery_id for row in recorded} == in_database
    new = {row.target_id for row in recorded if row.new}
    assert new == {f"wm{i:06d}" for i in range(1, MANY, 2)}
    assert {row.status for row in recorded if not row.new} == {"sent"}


def test_values_come_back_in_the_order_asked_for(database_url: str) -> None:
    rows = _rows(_targets(range(5)))
    with session_scope() as session:
        inserted = insert_returning(session, DELIVERY, DELIVERY_COLUMNS, rows, ("status", "id"))
    assert inserted == [("planned", i) for i in range(1, 6)]


def test_a_table_numbered_at_random_is_an_error_not_wrong_ids(database_url: str) -> None:
    """SQLite numbers new rows at random once a row holds the largest possible id: counting
    would give wrong ids, so the insert fails and its transaction rolls back."""
    with session_scope() as session:
        [(top, *_)] = insert_returning(
            session, DELIVERY, DELIVERY_COLUMNS, _rows(_targets([0])), ("id",)
        )
        session.connection().exec_driver_sql(
            "UPDATE delivery SET id = 9223372036854775807 WHERE id = ?", (top,)
        )
    with pytest.raises(RuntimeError, match="did not number the 3 new rows"):
        with session_scope() as session:
            insert_returning(
                session, DELIVERY, DELIVERY_COLUMNS, _rows(_targets(range(1, 4))), ("id",)
            )
    assert list(_ids_in_database()) == ["wm000000"]


def _rows(targets: list[PlannedTarget]) -> list[tuple]:
    o = OCCURRENCE
    shared = (o.sop_id, o.step, o.occurrence, o.channel, o.flow_run_id, NOW, NOW)
    return [(o.key(t.target_kind, t.target_id), *shared, *t) for t in targets]
