"""The Delivery log: record planned touches once per idempotency key and move them through their states."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Table, case, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from core.clock import as_utc, utcnow
from models.delivery import Delivery, DeliveryStatus, Message

# Rows in these states may be (re)sent by a run of their occurrence.
SENDABLE = (DeliveryStatus.PLANNED, DeliveryStatus.FAILED)
SENDABLE_STATES = tuple(s.value for s in SENDABLE)
SENDABLE_VALUES = frozenset(SENDABLE_STATES)
# Bulk UPDATEs go to the table, not the mapped class: no ORM bookkeeping per row changed.
DELIVERY: Table = Delivery.__table__  # type: ignore[attr-defined]
IN_LIMIT = 10_000  # bound values per IN list or multi-row INSERT (SQLite allows 32,766)

T = TypeVar("T")


def chunked(items: Sequence[T], size: int = IN_LIMIT) -> Iterator[Sequence[T]]:
    """`items` in slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class Occurrence:
    """One run of one SOP step: what every idempotency key of the run starts with."""

    sop_id: str
    step: str
    occurrence: str  # e.g. 2026-11-24
    channel: str
    flow_run_id: str | None = None
    # No run had recorded a row of the occurrence when this one began: its batches (disjoint)
    # have no rows to look up before writing, and a concurrent run's rows still surface on insert.
    fresh: bool = False

    def key(self, target_kind: str, target_id: str) -> str:
        return f"{self.sop_id}:{self.step}:{self.occurrence}:{target_kind}:{target_id}"


class PlannedTarget(NamedTuple):
    """A target to record, with the state its row starts in (planned unless a guard decided).

    A named tuple: a batch builds one per target, and rows are written from it as they are.
    """

    target_kind: str  # group | customer
    target_id: str  # chat_id | external_userid
    sender: str | None
    group_id: int | None = None
    customer_id: int | None = None
    status: str = DeliveryStatus.PLANNED.value
    reason: str | None = None
    not_before: dt.datetime | None = None
    message_id: int | None = None


class RecordedTouch(NamedTuple):
    """A Delivery row as recorded for a target, with its state before this run touched it."""

    delivery_id: int
    target_id: str
    status: str
    not_before: dt.datetime | None = None
    new: bool = False  # written by this call


def insert_ignoring_duplicates(
    session: Session, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    """INSERT rows, silently keeping the existing row when a unique key already exists."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(table).on_conflict_do_nothing(), list(rows))


def ids_in(ids: Iterable[int]) -> Any:
    """`delivery.id IN (...)` with the ids written into the SQL: thousands of bound parameters
    cost SQLAlchemy more than the UPDATE itself, and ints (checked) cannot carry SQL."""
    return text(_ids_in_sql(ids))


def _ids_in_sql(ids: Iterable[int]) -> str:
    return f"delivery.id IN ({', '.join(map(str, map(int, ids))) or 'NULL'})"


def update_rows(
    session: Session,
    ids: Iterable[int],
    values: dict[str, Any],
    *,
    only_from: Sequence[str] = (),
    returning_ids: bool = False,
) -> Any:
    """UPDATE the Delivery rows with these ids (and a status in `only_from`, if given) to `values`,
    as driver SQL with each value bound by its column's type: compiling a statement per id list
    would cost SQLAlchemy more than running it. The driver's result (rowcount, returned ids)."""
    connection = session.connection()
    dialect = connection.dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    params: list[Any] = []
    for name, value in values.items():
        bind = _bind_processor(DELIVERY.c[name].type, dialect)
        params.append(bind(value) if bind else value)
    quote = dialect.identifier_preparer.quote
    statement = f"UPDATE delivery SET {', '.join(f'{quote(n)} = {mark}' for n in values)}"
    statement += f" WHERE {_ids_in_sql(ids)}"
    if only_from:
        statement += f" AND delivery.status IN ({', '.join([mark] * len(only_from))})"
        params += only_from
    if returning_ids:
        statement += " RETURNING delivery.id"
    return connection.exec_driver_sql(statement, tuple(params))


def insert_returning(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """INSERT rows (values in `columns` order) in multi-row statements, skipping rows whose unique
    key exists; the `returning` columns of the rows inserted.

    Values go to the driver as they are once each column type has bound them (a batch shares its
    timestamps, so each distinct value is bound once): no per-row work in SQLAlchemy.
    """
    if not rows:
        return []
    connection = session.connection()
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    binders = [
        (i, _memoized(_bind_processor(table.c[c].type, dialect))) for i, c in enumerate(columns)
    ]
    binders = [(i, bind) for i, bind in binders if bind is not None]
    placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
    values = "(" + ", ".join([placeholder] * len(columns)) + ")"
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES "
    tail = f" ON CONFLICT DO NOTHING RETURNING {', '.join(quote(c) for c in returning)}"
    found: list[tuple[Any, ...]] = []
    for part in chunked(rows, max(1, 3 * IN_LIMIT // len(columns))):
        params: list[Any] = []
        for row in part:
            bound = list(row)
            for i, bind in binders:
                bound[i] = bind(bound[i])
            params.extend(bound)
        statement = head + ", ".join([values] * len(part)) + tail
        found += connection.exec_driver_sql(statement, tuple(params)).tuples().all()
    return found


def _bind_processor(type_: Any, dialect: Any) -> Any:
    """What SQLAlchemy does to a value of `type_` before handing it to the driver, or None."""
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _memoized(bind: Any) -> Any:
    """`bind`, computed once per distinct value."""
    if bind is None:
        return None
    cache: dict[Any, Any] = {}

    def bound(value: Any) -> Any:
        try:
            return cache[value]
        except KeyError:
            cache[value] = result = bind(value)
            return result

    return bound


def existing_rows(
    occurrence: Occurrence, targets: Iterable[PlannedTarget], *, session: Session
) -> dict[str, RecordedTouch]:
    """target_id -> the row this occurrence already has for each of `targets` that has one
    (none before a fresh occurrence's batch is written)."""
    return {} if occurrence.fresh else rows_of(occurrence, targets, session=session)


def rows_of(
    occurrence: Occurrence, targets: Iterable[PlannedTarget], *, session: Session
) -> dict[str, RecordedTouch]:
    """target_id -> the row recorded under each target's key, looked up in the database."""
    keys = [occurrence.key(t.target_kind, t.target_id) for t in targets]
    found: dict[str, RecordedTouch] = {}
    for part in chunked(keys):
        rows = session.execute(
            select(Delivery.id, Delivery.target_id, Delivery.status, Delivery.not_before).where(
                col(Delivery.idempotency_key).in_(part)
            )
        )
        found.update((row[1], RecordedTouch(*row)) for row in rows)
    return found


DELIVERY_COLUMNS = (
    "idempotency_key",
    "sop_id",
    "step",
    "occurrence",
    "channel",
    "flow_run_id",
    "planned_at",
    "updated_at",
    *PlannedTarget._fields,
)


def record_planned(
    occurrence: Occurrence,
    targets: Sequence[PlannedTarget],
    *,
    session: Session,
    now: dt.datetime | None = None,
) -> list[RecordedTouch]:
    """Record a row per target, in the state it carries, unless its key exists; return every target's
    row (rows that existed with the state they have, new rows with the state they were given)."""
    now = now or utcnow()
    o = occurrence
    shared = (o.sop_id, o.step, o.occurrence, o.channel, o.flow_run_id, now, now)
    rows = [(o.key(t.target_kind, t.target_id), *shared, *t) for t in targets]
    inserted = insert_returning(
        session, DELIVERY, DELIVERY_COLUMNS, rows, ("id", "target_id", "status")
    )
    recorded = [RecordedTouch(id_, target, status, None, True) for id_, target, status in inserted]
    if len(recorded) < len(targets):  # some keys existed already
        new = {row.target_id for row in recorded}
        recorded += rows_of(
            occurrence, [t for t in targets if t.target_id not in new], session=session
        ).values()
    return recorded


def has_rows(occurrence: Occurrence, *, session: Session) -> bool:
    """Whether any run of the occurrence recorded a row yet."""
    statement = select(Delivery.id).where(
        col(Delivery.sop_id) == occurrence.sop_id,
        col(Delivery.occurrence) == occurrence.occurrence,
        col(Delivery.step) == occurrence.step,
    )
    return session.execute(statement.limit(1)).first() is not None


def store_message(content: str, *, session: Session, now: dt.datetime | None = None) -> int:
    """The id of the Message row holding `content`, created on first use."""
    content_hash = hashlib.sha256(content.encode("utf-8")).hexdigest()
    insert_ignoring_duplicates(
        session,
        Message.__table__,  # type: ignore[arg-type]
        [{"content_hash": content_hash, "content": content, "created_at": now or utcnow()}],
    )
    return int(
        session.execute(
            select(Message.id).where(col(Message.content_hash) == content_hash)
        ).scalar_one()
    )


def attach_messages(delivery_ids_by_message: dict[int, list[int]], *, session: Session) -> None:
    """Point each Delivery row at the Message it will send."""
    for message_id, ids in delivery_ids_by_message.items():
        for part in chunked(ids):
            update_rows(session, part, {"message_id": message_id})


def set_status(
    delivery_ids: Iterable[int],
    status: DeliveryStatus,
    *,
    session: Session,
    only_from: Sequence[DeliveryStatus] | None = None,
    **values: Any,
) -> int:
    """Move rows to `status` (optionally only rows now in `only_from`); returns rows changed."""
    ids = list(delivery_ids)
    values = {"status": status.value, "updated_at": utcnow(), **values}
    states = [s.value for s in only_from or ()]
    changed = 0
    for part in chunked(ids):
        changed += int(update_rows(session, part, values, only_from=states).rowcount or 0)
    return changed


def claim_for_sending(
    delivery_ids: Iterable[int], *, session: Session, flow_run_id: str | None = None
) -> set[int]:
    """Move sendable rows to `sending` (by this flow run) and return the ids this caller claimed.

    Two runs of one occurrence racing for the same rows cannot both claim a row, so
    nothing is sent twice.
    """
    ids = list(delivery_ids)
    if not ids:
        return set()
    values = {"status": DeliveryStatus.SENDING.value, "updated_at": utcnow(), "reason": None}
    if flow_run_id:
        values["flow_run_id"] = flow_run_id
    claimed: set[int] = set()
    for part in chunked(ids):
        result = update_rows(session, part, values, only_from=SENDABLE_STATES, returning_ids=True)
        claimed.update(id_ for (id_,) in result.fetchall())
    return claimed


def sendable_ids(delivery_ids: Iterable[int], *, session: Session) -> set[int]:
    """Those of `delivery_ids` still waiting to be sent (planned, or failed before)."""
    ids = list(delivery_ids)
    found: set[int] = set()
    for part in chunked(ids):
        found.update(
            session.execute(
                select(Delivery.id).where(
                    ids_in(part), col(Delivery.status).in_(list(SENDABLE_VALUES))
                )
            ).scalars()
        )
    return found


class OutcomeRow(NamedTuple):
    """Rows of an occurrence in one (status, reason), and how many of them this run wrote last."""

    status: str
    reason: str
    rows: int
    this_run: int
    calls: int  # distinct msgids among this run's rows: the mass-message calls that created them


def occurrence_outcomes(occurrence: Occurrence, *, session: Session) -> list[OutcomeRow]:
    """(status, reason) counts of the occurrence, most common first, with this run's share: rows
    the run recorded or last claimed, over every attempt of its tasks (retries included)."""
    mine = col(Delivery.flow_run_id) == (occurrence.flow_run_id or "")
    reason = func.coalesce(Delivery.reason, "")
    statement = (
        select(
            Delivery.status,
            reason,
            func.count(),
            func.coalesce(func.sum(case((mine, 1), else_=0)), 0),
            func.count(func.distinct(case((mine, Delivery.msgid), else_=None))),
        )
        .where(*_occurrence_clauses(occurrence))
        .group_by(Delivery.status, reason)
        .order_by(func.count().desc())
    )
    return [
        OutcomeRow(s, r, int(n), int(m), int(c)) for s, r, n, m, c in session.execute(statement)
    ]


def _occurrence_clauses(occurrence: Occurrence) -> list[Any]:
    return [
        col(Delivery.sop_id) == occurrence.sop_id,
        col(Delivery.step) == occurrence.step,
        col(Delivery.occurrence) == occurrence.occurrence,
    ]


@dataclass(frozen=True)
class Unsettled:
    """Rows not in a final state: what keeps a run from being complete."""

    sending: int = 0  # claimed, no answer recorded: the next run reconciles them with WeCom
    waiting: int = 0  # planned or failed and due, not sent
    unknown: int = 0  # caught mid-send, WeCom could not say whether it created them
    deferred: int = 0  # planned for later (quiet hours): not a fault
    deferred_until: dt.datetime | None = None


NOT_FINAL_STATES = (*SENDABLE_STATES, DeliveryStatus.SENDING.value, DeliveryStatus.UNKNOWN.value)


def unsettled(occurrence: Occurrence, *, now: dt.datetime, session: Session) -> Unsettled:
    """The occurrence's rows still sending, due but unsent, or unknown, and those deferred."""
    return _unsettled(
        [
            col(Delivery.step) == occurrence.step,
            col(Delivery.occurrence) == occurrence.occurrence,
        ],
        occurrence.sop_id,
        now=now,
        session=session,
    )


def unsettled_by_run(
    sop_id: str, flow_run_id: str, *, now: dt.datetime, session: Session
) -> Unsettled:
    """The SOP's rows this flow run recorded or claimed that are not final (trigger SOPs: a
    drain's touches span many occurrences)."""
    return _unsettled([col(Delivery.flow_run_id) == flow_run_id], sop_id, now=now, session=session)


def _unsettled(clauses: list[Any], sop_id: str, *, now: dt.datetime, session: Session) -> Unsettled:
    """Count rows of `sop_id` matching `clauses` by how far they are from final.

    Reads through the status index (`|| ''` keeps the planner off the occurrence index, which
    holds every row of a large occurrence): rows not yet final are few.
    """
    due = or_(col(Delivery.not_before).is_(None), col(Delivery.not_before) <= now)
    no_msgid = col(Delivery.msgid).is_(None)
    statement = (
        select(Delivery.status, due, no_msgid, func.count(), func.min(Delivery.not_before))
        .where(
            (col(Delivery.sop_id) + "") == sop_id,
            col(Delivery.status).in_(NOT_FINAL_STATES),
            *clauses,
        )
        .group_by(Delivery.status, due, no_msgid)
    )
    counts: dict[str, int] = {"sending": 0, "waiting": 0, "unknown": 0, "deferred": 0}
    until: dt.datetime | None = None
    for status, is_due, without_msgid, rows, first in session.execute(statement):
        if status == DeliveryStatus.SENDING.value:
            counts["sending"] += rows
        elif status == DeliveryStatus.UNKNOWN.value:
            # Rows WeCom accepted (a msgid) and later forgot are results, not unsettled sends.
            counts["unknown"] += rows if without_msgid else 0
        elif is_due:
            counts["waiting"] += rows
        else:
            counts["deferred"] += rows
            first = as_utc(first)
            until = first if until is None or first < until else until
    return Unsettled(**counts, deferred_until=until)


def run_outcomes(
    sop_id: str, flow_run_id: str, *, session: Session
) -> tuple[dict[tuple[str, str], int], int]:
    """(status, reason) -> rows of the SOP this flow run recorded or last claimed, over every
    attempt of its tasks, and the distinct msgids of its sent rows (the calls that created them)."""
    reason = func.coalesce(Delivery.reason, "")
    statement = (
        select(Delivery.status, reason, func.count(), func.count(func.distinct(Delivery.msgid)))
        .where(col(Delivery.sop_id) == sop_id, col(Delivery.flow_run_id) == flow_run_id)
        .group_by(Delivery.status, reason)
    )
    counts: dict[tuple[str, str], int] = {}
    calls = 0
    for status, why, rows, msgids in session.execute(statement):
        counts[(status, why)] = int(rows)
        calls += int(msgids) if status == DeliveryStatus.SENT.value else 0
    return counts, calls
