"""Run one community occurrence in a process of its own (the crash test kills it mid-dispatch)."""

from __future__ import annotations

import datetime as dt
import sys

from flows.community import community_sop


def main(sop_id: str, day: str, now: str) -> None:
    """`python -m tests.flows.run_community morning-price 2026-11-24 2026-11-24T00:30:00+00:00`."""
    community_sop(sop_id=sop_id, day=dt.date.fromisoformat(day), now=dt.datetime.fromisoformat(now))


if __name__ == "__main__":
    main(*sys.argv[1:])
