"""UPDATEs and SELECTs by id list: the right rows on either database, and on SQLite one statement
text whatever the list (each distinct text is a compiled program a pooled connection keeps)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import event, select

from models.bulk import ids_in, update_rows
from models.db import get_engine, session_scope
from models.deliveries import Occurrence, PlannedTarget, record_planned
from models.delivery import Delivery

NOW = dt.datetime(2026, 12, 2, 2, 0, tzinfo=dt.UTC)
OCCURRENCE = Occurrence("lists", "s1", "2026-12-02", "wecom", "run-1")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> str:
    return str(
        request.getfixturevalue("database_url" if request.param == "sqlite" else "postgres_url")
    )


@pytest.fixture
def ids(url: str) -> list[int]:
    return recorded_ids()


def recorded_ids() -> list[int]:
    targets = [PlannedTarget("customer", f"wm{i:04d}", "staff-1") for i in range(30)]
    with session_scope() as session:
        recorded = record_planned(OCCURRENCE, targets, session=session, now=NOW)
    return sorted(row.delivery_id for row in recorded)


@pytest.fixture
def statements(database_url: str) -> Iterator[list[str]]:
    seen: list[str] = []

    def remember(_conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith(("UPDATE delivery", "SELECT delivery.id")):
            seen.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", remember)
    yield seen
    event.remove(engine, "before_cursor_execute", remember)


def statuses() -> dict[int, str]:
    with session_scope(readonly=True) as session:
        return dict(session.execute(select(Delivery.id, Delivery.status)).tuples().all())


def test_updates_change_exactly_the_listed_rows_that_qualify(ids: list[int]) -> None:
    with session_scope() as session:
        claimed = update_rows(
            session, ids[:10], {"status": "sending"}, only_from=["planned"], returning_ids=True
        ).fetchall()
        again = update_rows(session, ids[5:15], {"status": "sending"}, only_from=["planned"])
        nothing = update_rows(session, [], {"status": "failed"})
    assert sorted(i for (i,) in claimed) == ids[:10]
    assert again.rowcount == 5 and nothing.rowcount == 0
    assert [i for i, status in sorted(statuses().items()) if status == "sending"] == ids[:15]


def test_a_select_reads_only_the_listed_rows(ids: list[int]) -> None:
    with session_scope(readonly=True) as session:
        found = session.execute(select(Delivery.id).where(ids_in(ids[3:7], session))).scalars()
        none = session.execute(select(Delivery.id).where(ids_in([], session))).scalars()
        assert sorted(found) == ids[3:7]
        assert list(none) == []


def test_sqlite_runs_one_statement_text_for_every_id_list(
    database_url: str, statements: list[str]
) -> None:
    ids = recorded_ids()
    with session_scope() as session:
        for part in (ids[:3], ids[3:20], ids[20:]):
            update_rows(session, part, {"status": "sending"}, only_from=["planned"])
            session.execute(select(Delivery.id).where(ids_in(part, session))).all()
    assert len(statements) == 6
    assert len(set(statements)) == 2, "the ids must travel as a parameter, not in the SQL"
