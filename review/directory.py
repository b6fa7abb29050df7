"""Stores, staff and groups, read once: their names, and the region and store each touch belongs to."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from models.people import CustomerGroup, Staff, Store


@dataclass(frozen=True)
class Directory:
    """Stores, staff and groups (small tables, read once): names, and where each row belongs.

    A 1:1 row belongs to the store of the staff member who sent it (the customer's advisor) and
    that store's city; a group row to the group's store and region.
    """

    stores: dict[int, tuple[str, str]]  # id -> (name, city)
    staff: dict[str, tuple[str, int | None]]  # userid -> (name, store id)
    groups: dict[int, tuple[str, int | None, int]]  # id -> (region, store id, members)

    @classmethod
    def read(cls, session: Session) -> Directory:
        return cls(
            stores={
                i: (n, c)
                for i, n, c in session.execute(
                    select(col(Store.id), col(Store.name), col(Store.city))
                )
            },
            staff={
                u: (n, s)
                for u, n, s in session.execute(
                    select(col(Staff.userid), col(Staff.name), col(Staff.store_id))
                )
            },
            groups={
                i: (r, s, m or 0)
                for i, r, s, m in session.execute(
                    select(
                        col(CustomerGroup.id),
                        col(CustomerGroup.region),
                        col(CustomerGroup.store_id),
                        col(CustomerGroup.member_count),
                    )
                )
            },
        )

    def staff_name(self, userid: str | None) -> str:
        return self.staff.get(userid or "", (userid or "—", None))[0]

    def place(self, sender: str | None, group_id: int | None) -> tuple[str, str]:
        """(region, store name) of a row."""
        if group_id is not None and group_id in self.groups:
            region, store_id, _ = self.groups[group_id]
            return region, self.stores.get(store_id, ("—", ""))[0] if store_id else "—"
        store_id = self.staff.get(sender or "", ("", None))[1]
        name, city = self.stores.get(store_id, ("—", "—")) if store_id else ("—", "—")
        return city, name

    def members(self, group_id: int | None) -> int:
        return self.groups[group_id][2] if group_id in self.groups else 1
