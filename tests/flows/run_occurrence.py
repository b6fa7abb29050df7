"""Run one occurrence in a process of its own (crash tests kill it mid-dispatch)."""

from __future__ import annotations

import datetime as dt
import sys

from flows.community import community_sop
from flows.customers import customer_sop


def main(path: str, sop_id: str, step: str, day: str, now: str) -> None:
    """`python -m tests.flows.run_occurrence group morning-price main 2026-11-24 2026-11-24T00:30:00+00:00`
    (`customer` for the 1:1 path)."""
    at = dt.datetime.fromisoformat(now)
    if path == "group":
        community_sop(sop_id=sop_id, day=dt.date.fromisoformat(day), now=at)
    else:
        customer_sop(sop_id=sop_id, step=step, day=dt.date.fromisoformat(day), now=at)


if __name__ == "__main__":
    main(*sys.argv[1:])
