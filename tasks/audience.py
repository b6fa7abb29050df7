"""Resolve an SOP's audience from the tables: id ranges to batch over, then the rows of one batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prefect import task
from sqlalchemy import func, select
from sqlmodel import Session, col

from models.db import session_scope
from models.people import CustomerGroup, Staff

IdRange = tuple[int, int]


@dataclass(frozen=True)
class GroupTarget:
    """A customer group as the templates and the dispatcher need it."""

    id: int
    chat_id: str
    name: str
    region: str
    theme: str
    member_count: int
    owner_userid: str
    owner_name: str


def _group_filters(groups: Any) -> list[Any]:
    """WHERE clauses for a `groups:` audience; every value is a bound parameter."""
    clauses: list[Any] = [col(CustomerGroup.dismissed_at).is_(None)]
    if groups is None:
        return clauses
    for field, column in (
        ("theme", CustomerGroup.theme),
        ("region", CustomerGroup.region),
        ("chat_id", CustomerGroup.chat_id),
    ):
        values = getattr(groups, field, None)
        if values:
            clauses.append(col(column).in_(list(values)))
    return clauses


def group_id_ranges(groups: Any, *, batch_size: int, session: Session) -> list[IdRange]:
    """Inclusive id ranges that split the matching groups into batches of `batch_size`."""
    ids = session.exec(
        select(CustomerGroup.id).where(*_group_filters(groups)).order_by(CustomerGroup.id)
    ).all()
    return [
        (ids[start][0], ids[min(start + batch_size, len(ids)) - 1][0])
        for start in range(0, len(ids), batch_size)
    ]


def count_groups(groups: Any, *, session: Session) -> int:
    """How many groups match a `groups:` audience."""
    statement = select(func.count()).select_from(CustomerGroup).where(*_group_filters(groups))
    return int(session.exec(statement).one()[0])


def groups_in_range(groups: Any, id_range: IdRange, *, session: Session) -> list[GroupTarget]:
    """The matching groups whose ids fall in `id_range`, with their owner's WeCom userid."""
    low, high = id_range
    statement = (
        select(
            CustomerGroup.id,
            CustomerGroup.chat_id,
            CustomerGroup.name,
            CustomerGroup.region,
            CustomerGroup.theme,
            CustomerGroup.member_count,
            Staff.userid,
            Staff.name,
        )
        .join(Staff, col(Staff.id) == col(CustomerGroup.owner_staff_id))
        .where(*_group_filters(groups), col(CustomerGroup.id).between(low, high))
        .order_by(CustomerGroup.id)
    )
    return [GroupTarget(*row) for row in session.exec(statement).all()]


@task(name="plan-group-batches")
def plan_group_batches(groups: Any, batch_size: int) -> list[IdRange]:
    """Split the SOP's group audience into id ranges, one task run each."""
    with session_scope() as session:
        return group_id_ranges(groups, batch_size=batch_size, session=session)


@task(name="resolve-groups")
def resolve_groups(groups: Any, id_range: IdRange) -> list[GroupTarget]:
    """The groups of one batch."""
    with session_scope() as session:
        return groups_in_range(groups, id_range, session=session)


def first_group(groups: Any, *, session: Session, chat_id: str | None = None) -> GroupTarget | None:
    """The first matching group (or the one with `chat_id`), for previews."""
    clauses = _group_filters(groups)
    if chat_id:
        clauses.append(col(CustomerGroup.chat_id) == chat_id)
    first = session.exec(select(func.min(CustomerGroup.id)).where(*clauses)).one()[0]
    if first is None:
        return None
    found: Sequence[GroupTarget] = groups_in_range(None, (first, first), session=session)
    return found[0] if found else None
