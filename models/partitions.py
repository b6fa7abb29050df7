"""One occurrence, many workers: the occurrence's work and its partitions, claimed under a lease."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Index, LargeBinary, Text, and_, delete, func, or_, select, update
from sqlmodel import Field, Session, SQLModel, col

from models.types import UTCDateTime

PREPARE, DISPATCH = "prepare", "dispatch"  # partition kinds: id ranges, sender buckets
FREE, LEASED, DONE, FAILED = "free", "leased", "done", "failed"  # partition states
SETTLED = (DONE, FAILED)


class OccurrenceWork(SQLModel, table=True):
    """An occurrence shared by runners: what they need to work it (`plan`, pickled by the flow
    that created it) and the phase its barrier is at (prepare → dispatch → done)."""

    __tablename__ = "occurrence_work"
    __table_args__ = (Index("ix_occurrence_work_key", "sop_id", "step", "occurrence"),)

    id: int | None = Field(default=None, primary_key=True)
    sop_id: str = Field(max_length=128)
    step: str = Field(max_length=64)
    occurrence: str = Field(max_length=64)
    flow_run_id: str | None = Field(default=None, max_length=64)  # the run that coordinates
    phase: str = Field(default=PREPARE, max_length=16)
    plan: bytes = Field(sa_type=LargeBinary)
    created_at: dt.datetime = Field(sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(sa_type=UTCDateTime)


class OccurrencePartition(SQLModel, table=True):
    """A unit of an occurrence's work any runner may take: an id range to prepare, or a bucket of
    senders to dispatch; held by `owner` until `lease_until`, then free for another to take."""

    __tablename__ = "occurrence_partition"
    __table_args__ = (Index("ix_occurrence_partition_seq", "work_id", "kind", "seq", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    work_id: int = Field(foreign_key="occurrence_work.id")
    kind: str = Field(max_length=16)
    seq: int
    payload: str = Field(sa_type=Text)  # JSON: [low, high] or a list of senders
    state: str = Field(default=FREE, max_length=16)
    owner: str | None = Field(default=None, max_length=128)
    lease_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    result: str | None = Field(default=None, sa_type=Text)  # JSON: what working it found
    updated_at: dt.datetime = Field(sa_type=UTCDateTime)


class Claimed(NamedTuple):
    """A partition a runner now holds; `taken_over`: another runner's lease on it had expired."""

    id: int
    seq: int
    payload: Any
    taken_over: bool


def open_work(
    sop_id: str, step: str, occurrence: str, *, session: Session
) -> OccurrenceWork | None:
    """The occurrence's latest work that is not done yet (a re-run resumes it), or None."""
    w = OccurrenceWork
    statement = (
        select(w)
        .where(
            col(w.sop_id) == sop_id,
            col(w.step) == step,
            col(w.occurrence) == occurrence,
            col(w.phase) != DONE,
        )
        .order_by(col(w.id).desc())
        .limit(1)
    )
    return session.execute(statement).scalars().first()


def add_partitions(
    work_id: int, kind: str, payloads: Sequence[Any], *, now: dt.datetime, session: Session
) -> int:
    """Add partitions of `kind` numbered after those the work has; returns how many."""
    p = OccurrencePartition
    last = session.execute(
        select(func.max(p.seq)).where(col(p.work_id) == work_id, col(p.kind) == kind)
    ).scalar()
    start = 0 if last is None else int(last) + 1
    session.add_all(
        OccurrencePartition(
            work_id=work_id, kind=kind, seq=start + i, payload=json.dumps(payload), updated_at=now
        )
        for i, payload in enumerate(payloads)
    )
    session.flush()
    return len(payloads)


def claim_partition(
    work_id: int,
    kind: str,
    owner: str,
    *,
    now: dt.datetime,
    lease: dt.timedelta,
    session: Session,
) -> Claimed | None:
    """Take the next partition that is free or whose lease expired, or None.

    PostgreSQL: `FOR UPDATE SKIP LOCKED`, so racing runners each get a different row without
    waiting for one another. SQLite ignores it; its writers take the lock up front (BEGIN
    IMMEDIATE, models/db.py), so claims there are one at a time.
    """
    p = OccurrencePartition
    statement = (
        select(p.id, p.seq, p.payload, p.state)
        .where(
            col(p.work_id) == work_id,
            col(p.kind) == kind,
            or_(
                col(p.state) == FREE,
                and_(col(p.state) == LEASED, col(p.lease_until) < now),
            ),
        )
        .order_by(col(p.seq))
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    row = session.execute(statement).first()
    if row is None:
        return None
    session.execute(
        update(p)
        .where(col(p.id) == row.id)
        .values(
            state=LEASED,
            owner=owner,
            lease_until=now + lease,
            attempts=p.attempts + 1,
            updated_at=now,
        )
    )
    return Claimed(int(row.id), int(row.seq), json.loads(row.payload), row.state == LEASED)


def renew_leases(
    ids: Iterable[int], owner: str, *, until: dt.datetime, session: Session
) -> set[int]:
    """Extend `owner`'s leases on `ids`; returns those it still holds (another may have taken one
    whose lease had lapsed)."""
    ids = list(ids)
    if not ids:
        return set()
    p = OccurrencePartition
    result = session.execute(
        update(p)
        .where(col(p.id).in_(ids), col(p.owner) == owner, col(p.state) == LEASED)
        .values(lease_until=until)
        .returning(p.id)
    )
    return {int(id_) for (id_,) in result}


def finish_partition(
    partition_id: int,
    owner: str,
    *,
    failed: bool = False,
    result: dict[str, Any],
    now: dt.datetime,
    session: Session,
) -> bool:
    """Record a held partition done (or failed) with what working it found; False when `owner`
    no longer held it (another runner took it over and records its own result)."""
    p = OccurrencePartition
    changed = session.execute(
        update(p)
        .where(col(p.id) == partition_id, col(p.owner) == owner, col(p.state) == LEASED)
        .values(
            state=FAILED if failed else DONE,
            result=json.dumps(result, ensure_ascii=False),
            lease_until=None,
            updated_at=now,
        )
    )
    return bool(changed.rowcount)  # type: ignore[attr-defined]


def partition_states(work_id: int, kind: str, *, session: Session) -> Counter[str]:
    """How many of the work's partitions of `kind` are in each state."""
    p = OccurrencePartition
    rows = session.execute(
        select(p.state, func.count())
        .where(col(p.work_id) == work_id, col(p.kind) == kind)
        .group_by(p.state)
    )
    return Counter({state: int(n) for state, n in rows})


def partition_results(
    work_id: int, kind: str, *, session: Session
) -> list[tuple[str, dict[str, Any]]]:
    """(state, result) of each settled partition of `kind`, in order."""
    p = OccurrencePartition
    rows = session.execute(
        select(p.state, p.result)
        .where(col(p.work_id) == work_id, col(p.kind) == kind, col(p.state).in_(SETTLED))
        .order_by(col(p.seq))
    )
    return [(state, json.loads(result or "{}")) for state, result in rows]


def retry_failed(work_id: int, *, now: dt.datetime, session: Session) -> None:
    """Free the work's failed partitions, for a re-run to try them again."""
    p = OccurrencePartition
    session.execute(
        update(p)
        .where(col(p.work_id) == work_id, col(p.state) == FAILED)
        .values(state=FREE, owner=None, result=None, updated_at=now)
    )


def live_dispatch_senders(work_id: int, *, now: dt.datetime, session: Session) -> set[str]:
    """Senders of dispatch partitions still held under an unexpired lease."""
    p = OccurrencePartition
    rows = session.execute(
        select(p.payload).where(
            col(p.work_id) == work_id,
            col(p.kind) == DISPATCH,
            col(p.state) == LEASED,
            col(p.lease_until) >= now,
        )
    ).scalars()
    return {sender for payload in rows for sender in json.loads(payload)}


def drop_idle_dispatch(work_id: int, *, now: dt.datetime, session: Session) -> None:
    """Forget the work's dispatch partitions nobody holds now (a resumed run plans its buckets
    again from the rows still waiting)."""
    p = OccurrencePartition
    session.execute(
        delete(p).where(
            col(p.work_id) == work_id,
            col(p.kind) == DISPATCH,
            or_(col(p.state) != LEASED, col(p.lease_until) < now),
        )
    )
