"""Holdout: an SOP's control group, a stable share of its customers that Python and SQL agree on.

A keyed integer hash of (customer id, SOP id) that Python and SQL compute alike, so the guard
(Python) and the day planner (INSERT ... SELECT) agree on who is held out. Every intermediate
stays below 2**63 in SQLite and PostgreSQL bigint arithmetic.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import BigInteger, ColumnElement, cast
from sqlmodel import col

from models.people import Customer

HOLDOUT_PRIME = 2_147_483_647  # 2**31 - 1

N = TypeVar("N", int, ColumnElement[Any])


@cache
def _holdout_keys(sop_id: str) -> tuple[int, int, int, int]:
    digest = hashlib.sha256(sop_id.encode("utf-8")).digest()
    a, b, c, d = (int.from_bytes(digest[i : i + 8], "big") % HOLDOUT_PRIME for i in (0, 8, 16, 24))
    return a or 1, b, c, d


def holdout_bucket(customer_id: N, sop_id: str) -> N:
    """A stable pseudo-random bucket in [0, 2**31 - 1) for an int, or the same as a SQL expression.

    An affine step keyed by the SOP, then two quadratic steps mixing it; stable across days and runs.
    """
    a, b, c, d = _holdout_keys(sop_id)
    bucket = (customer_id % HOLDOUT_PRIME * a + b) % HOLDOUT_PRIME
    bucket = (bucket * bucket + c) % HOLDOUT_PRIME
    return (bucket * bucket + d) % HOLDOUT_PRIME


def holdout_threshold(share: float) -> int:
    return int(share * HOLDOUT_PRIME)


def is_held_out(customer_id: int, sop_id: str, share: float) -> bool:
    """Whether the customer is in the SOP's control group of about `share` of its audience."""
    return share > 0 and holdout_bucket(customer_id, sop_id) < holdout_threshold(share)


def held_out_clause(sop_id: str, share: float) -> ColumnElement[bool]:
    """SQL twin of `is_held_out` for `customer.id`."""
    return holdout_bucket(cast(col(Customer.id), BigInteger), sop_id) < holdout_threshold(share)
