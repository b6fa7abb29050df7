"""Upsert a chunk of rows by a natural key, counting new, changed and unchanged rows exactly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlmodel import Session

from imports.bulk import insert_with_ids
from imports.kind import Counts


@dataclass
class Upserted:
    """The ids by key of every row of the chunk, and which keys were new or changed."""

    ids: dict[Any, int] = field(default_factory=dict)
    new: set[Any] = field(default_factory=set)
    changed: dict[Any, dict[str, Any]] = field(default_factory=dict)  # key -> old values


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    key: tuple[str, ...],
    where: Any,
    counts: Counts | None = None,
    keep: tuple[str, ...] = (),
    none_exist: bool = False,
) -> Upserted:
    """INSERT rows whose `key` is not in the table (among the rows `where` selects), UPDATE those
    whose other values differ, leave the rest alone. `keep`: columns only written on insert;
    `none_exist`: the caller knows no key is in the table yet (a first load), so none is looked up."""
    done = Upserted()
    if not rows:
        return done
    columns = [c for c in rows[0] if c not in key]
    compared = [c for c in columns if c not in keep]
    selected = [table.c.id, *(table.c[c] for c in key), *(table.c[c] for c in compared)]
    existing = (
        {}
        if none_exist
        else {
            tuple(row[1 : 1 + len(key)]): row
            for row in session.execute(select(*selected).where(where))
        }
    )
    fresh: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for row in rows:
        row_key = tuple(row[c] for c in key)
        old = existing.get(row_key)
        if old is None:
            fresh.append(row)
            done.new.add(_plain(row_key))
            continue
        done.ids[_plain(row_key)] = old[0]
        before = dict(zip(compared, old[1 + len(key) :], strict=True))
        if any(before[c] != row[c] for c in compared):
            done.changed[_plain(row_key)] = before
            changes.append({"_id": old[0], **{f"_{c}": row[c] for c in compared}})
    if fresh:
        for row in insert_with_ids(session, table, fresh, key):
            done.ids[_plain(tuple(row[1:]))] = row[0]
    if changes:
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({c: bindparam(f"_{c}") for c in compared})
            .execution_options(synchronize_session=False)
        )
        session.connection().execute(statement, changes)
    if counts is not None:
        counts.new += len(done.new)
        counts.changed += len(done.changed)
        counts.unchanged += len(rows) - len(done.new) - len(done.changed)
    return done


def _plain(key: tuple[Any, ...]) -> Any:
    return key[0] if len(key) == 1 else key
