"""One occurrence, many workers: partitions created once, claimed under renewed leases, their results summed from the database."""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.clock import utcnow
from core.settings import get_settings
from engine.dispatch import DispatchResult, pending_senders, sender_buckets
from engine.guard import DEFERRED
from engine.outcomes import RunTally
from engine.reconcile import ReconcileSummary, settle, stuck_rows
from models.db import session_scope
from models.deliveries import Occurrence
from models.partitions import (
    DISPATCH,
    FAILED,
    PREPARE,
    SETTLED,
    Claimed,
    OccurrenceWork,
    add_partitions,
    claim_partition,
    drop_idle_dispatch,
    finish_partition,
    live_dispatch_senders,
    open_work,
    partition_results,
    partition_states,
    renew_leases,
    retry_failed,
)

log = logging.getLogger(__name__)
MAX_BUCKET_ROWS = 300_000  # a dispatch partition's rows at most (tasks/dispatch.plan_dispatch's)
BUCKETS_PER_RUNNER = 4  # so a runner that finishes early finds another to take


def runner_name() -> str:
    """Who holds a lease: host, process and a nonce (a restarted process is someone else)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_length() -> dt.timedelta:
    return dt.timedelta(seconds=get_settings().partition_lease_seconds)


def start_work(
    occurrence: Occurrence, ranges: Sequence[tuple[int, int]], plan: bytes
) -> tuple[int, bool]:
    """The occurrence's work and its prepare partitions (one per id range): created once, or the
    unfinished work of an earlier run resumed (its done partitions kept, failed ones freed, `plan`
    replaced by this run's). Returns the work's id and whether it was resumed."""
    now = utcnow()
    with session_scope() as session:
        work = open_work(occurrence.sop_id, occurrence.step, occurrence.occurrence, session=session)
        if work is not None:
            work.plan, work.flow_run_id, work.updated_at = plan, occurrence.flow_run_id, now
            retry_failed(int(work.id or 0), now=now, session=session)
            return int(work.id or 0), True
        work = OccurrenceWork(
            sop_id=occurrence.sop_id,
            step=occurrence.step,
            occurrence=occurrence.occurrence,
            flow_run_id=occurrence.flow_run_id,
            plan=plan,
            created_at=now,
            updated_at=now,
        )
        session.add(work)
        session.flush()
        add_partitions(
            int(work.id or 0), PREPARE, [list(r) for r in ranges], now=now, session=session
        )
        return int(work.id or 0), False


def work_plan(work_id: int) -> bytes:
    """The pickled plan the coordinating run left for the runners."""
    with session_scope(readonly=True) as session:
        work = session.get(OccurrenceWork, work_id)
        if work is None:
            raise LookupError(f"no occurrence work {work_id}: was its database reset?")
        return bytes(work.plan)


def set_phase(work_id: int, phase: str) -> None:
    with session_scope() as session:
        work = session.get(OccurrenceWork, work_id)
        if work is not None:
            work.phase, work.updated_at = phase, utcnow()


def plan_dispatch_partitions(
    work_id: int, occurrence: Occurrence, *, now: dt.datetime, runners: int
) -> int:
    """Dispatch partitions for the rows waiting now: senders in buckets (a sender never split)
    small enough that every runner gets several; senders a live runner still holds are left to it."""
    with session_scope() as session:
        drop_idle_dispatch(work_id, now=utcnow(), session=session)
        held = live_dispatch_senders(work_id, now=utcnow(), session=session)
        waiting = {
            sender: rows
            for sender, rows in pending_senders(occurrence, now=now, session=session).items()
            if sender not in held
        }
        total = sum(waiting.values())
        size = min(MAX_BUCKET_ROWS, max(1, math.ceil(total / (runners * BUCKETS_PER_RUNNER))))
        buckets = sender_buckets(waiting, size) if waiting else []
        return add_partitions(work_id, DISPATCH, buckets, now=utcnow(), session=session)


def claim(work_id: int, kind: str, owner: str) -> Claimed | None:
    """The next partition of `kind` for `owner`, or None when none is free or expired."""
    with session_scope() as session:
        return claim_partition(
            work_id, kind, owner, now=utcnow(), lease=lease_length(), session=session
        )


def finish(partition_id: int, owner: str, result: dict[str, Any], *, failed: bool = False) -> bool:
    with session_scope() as session:
        done = finish_partition(
            partition_id, owner, failed=failed, result=result, now=utcnow(), session=session
        )
    if not done:
        log.warning("partition %s was taken over before %s finished it", partition_id, owner)
    return done


def settled(work_id: int, kind: str) -> bool:
    """Whether every partition of `kind` is done or failed (the barrier)."""
    with session_scope(readonly=True) as session:
        states = partition_states(work_id, kind, session=session)
    return all(state in SETTLED for state in states.elements())


class Leases:
    """The partitions a runner holds, renewed by a daemon thread every third of the lease: a
    killed runner stops renewing, and its partitions are free to take once the lease lapses."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.held: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="partition-leases", daemon=True)

    def __enter__(self) -> Leases:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def add(self, partition_id: int) -> None:
        with self._lock:
            self.held.add(partition_id)

    def discard(self, partition_id: int) -> None:
        with self._lock:
            self.held.discard(partition_id)

    def _renew(self) -> None:
        every = lease_length().total_seconds() / 3
        while not self._stop.wait(every):
            with self._lock:
                ids = set(self.held)
            if not ids:
                continue
            try:
                with session_scope() as session:
                    kept = renew_leases(
                        ids, self.owner, until=utcnow() + lease_length(), session=session
                    )
            except Exception:  # noqa: BLE001 - the next beat tries again; the lease covers two misses
                log.warning("renewing the leases of %s failed", self.owner, exc_info=True)
                continue
            with self._lock:
                lost = (ids - kept) & self.held  # not those finished since
            for partition_id in lost:
                log.warning(
                    "%s lost its lease on partition %s to another runner", self.owner, partition_id
                )


def reconcile_senders(
    occurrence: Occurrence, senders: Sequence[str], *, channel: Any
) -> ReconcileSummary:
    """Settle the rows of `senders` a runner whose lease lapsed left `sending`, before its bucket
    is sent again: asked of WeCom, never resent when they might have arrived."""
    wanted = set(senders)
    with session_scope() as session:
        rows = stuck_rows(occurrence.sop_id, occurrence=occurrence, session=session)
    return settle([row for row in rows if row.sender in wanted], channel=channel)


def prepared_result(planned: Any, sample: str | None, sample_for: str | None) -> dict[str, Any]:
    """What preparing a partition found, as its row keeps it (`RunTally.add_prepared`'s inputs)."""
    return {
        "touches": len(planned.touches),
        "already_done": dict(planned.already_done),
        "skipped": dict(planned.skipped),
        "deferred": planned.deferred,
        "sample": sample,
        "sample_for": sample_for,
    }


def dispatched_result(
    result: DispatchResult | None, reconciled: ReconcileSummary | None = None
) -> dict[str, Any]:
    """What dispatching a partition did, as its row keeps it."""
    outcomes = [[s, r, n] for (s, r), n in (result.outcomes if result else Counter()).items()]
    return {
        "outcomes": outcomes,
        "calls": result.calls if result else 0,
        "reconciled": reconciled.counts() if reconciled else {},
    }


def prepared_tally(work_id: int, tally: RunTally) -> list[str]:
    """Add every prepare partition's result to `tally`; the errors of those that failed."""
    with session_scope(readonly=True) as session:
        results = partition_results(work_id, PREPARE, session=session)
    errors = []
    for state, result in results:
        if state == FAILED:
            errors.append(str(result.get("error", "failed")))
            continue
        tally.recipients += (
            result["touches"]
            + sum(result["already_done"].values())
            + sum(result["skipped"].values())
            + result["deferred"]
        )
        tally.already_done.update(result["already_done"])
        for reason, rows in result["skipped"].items():
            tally.this_run[("skipped", reason)] += rows
        if result["deferred"]:
            tally.this_run[("planned", DEFERRED)] += result["deferred"]
        if tally.sample is None and result["sample"] is not None:
            tally.sample, tally.sample_for = result["sample"], result["sample_for"]
    return errors


@dataclass
class Dispatched:
    """The dispatch partitions' results summed: what the calls did, and the errors of failed ones."""

    result: DispatchResult = field(default_factory=DispatchResult)
    reconciled: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def dispatched(work_id: int) -> Dispatched:
    with session_scope(readonly=True) as session:
        results = partition_results(work_id, DISPATCH, session=session)
    total = Dispatched()
    for state, result in results:
        if state == FAILED:
            total.errors.append(str(result.get("error", "failed")))
        for status, reason, rows in result.get("outcomes", []):
            total.result.outcomes[(status, reason)] += rows
        total.result.calls += result.get("calls", 0)
        total.reconciled.update(result.get("reconciled", {}))
    return total
