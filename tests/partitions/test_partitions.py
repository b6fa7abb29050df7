"""One occurrence, many workers: partitions claimed without collisions, raced by worker processes, taken over from a killed one."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from channels.emulator import WeComEmulator
from core.clock import at_local
from core.settings import PROJECT_ROOT, get_settings, reset_settings
from engine.partitions import (
    claim,
    finish,
    plan_dispatch_partitions,
    set_phase,
    settled,
    start_work,
)
from flows.customers import customer_plan, customer_sop
from flows.partition_runner import SharedOccurrence, partition_runner
from models.db import session_scope
from models.deliveries import Occurrence, store_message
from models.partitions import (
    DISPATCH,
    DONE,
    PREPARE,
    OccurrencePartition,
    claim_partition,
)
from models.people import Staff, Store
from soplang.loader import load_sop
from tasks.audience import plan_customer_batches
from tests.conftest import use_emulator
from tests.factories import add_customers, deliveries, make_world

DAY = dt.date(2026, 11, 24)
TEN = at_local(DAY, 10, 0)
STAFF = [f"advisor{i:02d}.sh" for i in range(10)]


def shared_world(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, customers: int) -> None:
    """`customers` dormant customers spread over ten staff members (one text each)."""
    folder = tmp_path / "sop"
    shutil.copytree(PROJECT_ROOT / "tests" / "fixtures" / "sop_customer", folder)
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder))
    reset_settings()
    make_world(DAY, url)
    with session_scope() as session:
        store = session.execute(select(Store.id)).scalars().first()
        session.execute(
            insert(Staff),
            [{"userid": u, "name": f"顾问{u[7:9]}", "store_id": store} for u in STAFF],
        )
    each = customers // len(STAFF)
    for i, userid in enumerate(STAFF):
        add_customers(each, owner=userid, first=i * each)


def sent_targets(emulator: WeComEmulator) -> Counter[str]:
    """How many times the emulator's own log says each recipient was sent to."""
    return Counter(t for m in emulator.messages for t in m["targets"])


def test_a_partitioned_occurrence_sends_each_recipient_once_and_sums_its_outcomes(
    database_url: str, emulator: WeComEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers asked for, no runner deployment to start: the run works every partition
    itself, and its summary (summed from the partitions' rows) matches the Delivery log."""
    shared_world(database_url, tmp_path, monkeypatch, 600)
    monkeypatch.setenv("SOPFLOW_OCCURRENCE_WORKERS", "2")
    monkeypatch.setenv("SOPFLOW_BATCH_SIZE", "100")
    reset_settings()

    summary = customer_sop(sop_id="dormant-care", step="care", day=DAY, now=TEN)

    rows = deliveries()
    sent = sorted(r.target_id for r in rows if r.status == "sent")
    assert len(rows) == len({r.target_id for r in rows}) == 600
    assert summary["recipients"] == 600
    assert sorted(sent_targets(emulator)) == sent and max(sent_targets(emulator).values()) == 1
    assert summary["this_run"]["sent"] == len(sent)
    assert len(emulator.messages) == len(STAFF)  # one call per staff member and text
    with session_scope() as session:
        parts = session.execute(select(OccurrencePartition)).scalars().all()
    assert Counter((p.kind, p.state) for p in parts)[(PREPARE, DONE)] == 6
    assert {p.state for p in parts} == {DONE}

    again = customer_sop(sop_id="dormant-care", step="care", day=DAY, now=TEN)

    assert again["recipients"] == 600 and "sent" not in again["this_run"]
    assert sum(sent_targets(emulator).values()) == len(sent)


def test_a_rerun_resumes_the_unfinished_work_and_a_finished_one_starts_afresh(
    database_url: str,
) -> None:
    """The same partitions for a re-run of an unfinished occurrence (done ones kept, failed ones
    freed); once the occurrence's work is done, its next run gets work of its own."""
    key = Occurrence("s", "main", "2026-11-24", "outbox", "run-1")
    work_id, resumed = start_work(key, [(1, 10), (11, 20)], b"plan-1")
    first = claim(work_id, PREPARE, "a")
    second = claim(work_id, PREPARE, "a")
    assert first is not None and second is not None
    assert finish(first.id, "a", {"touches": 1}) and finish(second.id, "a", {}, failed=True)

    again, resumed_again = start_work(key, [(1, 10), (11, 20), (21, 30)], b"plan-2")

    assert (again, resumed, resumed_again) == (work_id, False, True)
    with session_scope() as session:
        states = Counter(p.state for p in session.execute(select(OccurrencePartition)).scalars())
    assert states == {DONE: 1, "free": 1}  # nothing added, the failed one free again
    set_phase(work_id, DONE)
    fresh, resumed_fresh = start_work(key, [(1, 10)], b"plan-3")
    assert fresh != work_id and not resumed_fresh


@pytest.mark.postgres
def test_racing_claims_on_postgresql_skip_each_others_locked_partition(postgres_url: str) -> None:
    """A claim holding its row's lock (not committed yet) does not block a second claim, which
    takes the next partition; once committed, nobody can take it until its lease lapses."""
    work_id, _ = start_work(Occurrence("s", "main", "d", "outbox"), [(1, 10), (11, 20)], b"")
    now, lease = dt.datetime.now(dt.UTC), dt.timedelta(seconds=30)
    with session_scope() as first:
        one = claim_partition(work_id, PREPARE, "a", now=now, lease=lease, session=first)
        with session_scope() as second:
            other = claim_partition(work_id, PREPARE, "b", now=now, lease=lease, session=second)
    assert one is not None and other is not None
    assert (one.seq, other.seq) == (0, 1) and not one.taken_over
    assert claim(work_id, PREPARE, "c") is None
    later = now + dt.timedelta(seconds=31)
    with session_scope() as session:
        taken = claim_partition(work_id, PREPARE, "c", now=later, lease=lease, session=session)
    assert taken is not None and taken.taken_over and taken.seq == 0


@pytest.mark.postgres
def test_batches_storing_the_same_texts_in_opposite_orders_do_not_deadlock(
    postgres_url: str,
) -> None:
    """Two batches' transactions (two runners, or a batch written while the next is read) meet
    texts A and B in opposite orders: each gets the same Message ids, neither is a deadlock victim."""
    both = threading.Barrier(2)

    def record(texts: list[str]) -> list[int]:
        with session_scope() as session:
            ids = []
            for text in texts:
                ids.append(store_message(text, session=session))
                both.wait(timeout=20)
            return ids

    with ThreadPoolExecutor(2) as pool:
        forward, backward = pool.submit(record, ["A", "B"]), pool.submit(record, ["B", "A"])
        assert forward.result(timeout=60) == backward.result(timeout=60)[::-1]


def share_occurrence(runners: int) -> tuple[int, Occurrence]:
    """What the occurrence's run does before runners start: its key and prepare partitions."""
    spec = load_sop(Path(os.environ["SOPFLOW_SOP_DIR"]) / "dormant-care.md")
    plan = customer_plan(spec, "care", DAY)
    key = Occurrence(spec.id, "care", DAY.isoformat(), "wecom", "coordinator", fresh=True)
    ranges = plan_customer_batches.fn(plan.audience, get_settings().batch_size, TEN)
    work_id, _ = start_work(key, ranges, pickle.dumps(SharedOccurrence(plan, key, TEN)))
    return work_id, key


def open_dispatch(work_id: int, key: Occurrence, runners: int) -> int:
    """The barrier passed: the coordinator plans the dispatch partitions and opens the phase."""
    planned = plan_dispatch_partitions(work_id, key, now=TEN, runners=runners)
    set_phase(work_id, DISPATCH)
    return planned


def runner(phases: str, folder: Path) -> subprocess.Popen[bytes]:
    """A worker process running `tests/partitions/runner_proc.py` against the same databases and
    emulator (the settings are in the environment); `go` tells it the occurrence's work."""
    ready = Path(tempfile.mkdtemp(prefix="runner-", dir=folder)) / "ready"
    env = dict(os.environ, PREFECT_LOGGING_LEVEL="WARNING", SOPFLOW_RUNNER_READY=str(ready))
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.partitions.runner_proc", phases],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.PIPE,
    )
    _ready[process.pid] = ready
    return process


_ready: dict[int, Path] = {}  # worker pid -> the file it creates once its imports are done


def go(process: subprocess.Popen[bytes], work_id: int, timeout: float = 120) -> None:
    """Give the worker the occurrence's work once it is ready: a worker still importing Prefect
    (seconds, longer under load) would leave every partition of a race to the other one."""
    deadline = time.monotonic() + timeout
    while not _ready[process.pid].exists():
        assert process.poll() is None, f"the worker exited with {process.returncode} at start"
        assert time.monotonic() < deadline, "the worker was not ready in time"
        time.sleep(0.1)
    assert process.stdin is not None
    process.stdin.write(f"{work_id}\n".encode())
    process.stdin.close()


def finished(process: subprocess.Popen[bytes], timeout: float = 90) -> int:
    return process.wait(timeout=timeout)


@pytest.mark.slow  # worker processes each import Prefect: ~40 s alone, longer under load
@pytest.mark.postgres
def test_two_worker_processes_race_one_occurrence_and_reach_every_recipient_once(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPFLOW_BATCH_SIZE", "250")
    with WeComEmulator() as emulator:
        use_emulator(emulator, monkeypatch)
        workers = [runner("prepare,dispatch", tmp_path) for _ in range(2)]
        shared_world(postgres_url, tmp_path, monkeypatch, 3000)
        work_id, key = share_occurrence(2)
        for worker in workers:
            go(worker, work_id)
        deadline = time.monotonic() + 90
        while not settled(work_id, PREPARE) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert open_dispatch(work_id, key, 2) >= 4
        assert [finished(w) for w in workers] == [0, 0]

        rows = deliveries()
        sent = Counter(r.target_id for r in rows if r.status == "sent")
        by_emulator = sent_targets(emulator)
    assert len(rows) == len({r.target_id for r in rows}) == 3000  # each recorded once
    assert {r.status for r in rows} == {"sent", "skipped"}  # 0 lost
    assert by_emulator == sent  # each sent exactly once, by WeCom's own log
    with session_scope() as session:
        owners = Counter(
            (p.kind, p.owner.split(":")[1])
            for p in session.execute(select(OccurrencePartition)).scalars()
        )
    # both processes took a share of the 12 id ranges
    assert len({pid for (kind, pid) in owners if kind == PREPARE}) == 2


@pytest.mark.slow
@pytest.mark.postgres
def test_a_killed_worker_s_partitions_are_finished_by_the_other_after_its_lease_lapses(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPFLOW_PARTITION_LEASE_SECONDS", "2")
    monkeypatch.setenv(
        "WECOM_CONNECT_TIMEOUT", "0.5"
    )  # reconciliation waits 2 × the call's timeouts
    monkeypatch.setenv("WECOM_READ_TIMEOUT", "1.5")
    with WeComEmulator() as emulator:
        use_emulator(emulator, monkeypatch)
        doomed, survivor = runner("dispatch", tmp_path), runner("dispatch", tmp_path)
        shared_world(postgres_url, tmp_path, monkeypatch, 1000)
        work_id, key = share_occurrence(1)
        partition_runner(work_id, PREPARE, until_done=True)
        assert open_dispatch(work_id, key, 3) == len(STAFF)  # one sender a partition
        emulator.configure(delay_seconds=0.4, delay_paths=["add_msg_template"])
        go(doomed, work_id)
        deadline = time.monotonic() + 60
        while len(emulator.messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        killed_after = len(emulator.messages)
        assert 2 <= killed_after < len(STAFF)  # killed mid-occurrence
        emulator.configure(delay_seconds=0.0)

        go(survivor, work_id)
        assert finished(survivor) == 0

        rows = deliveries()
        sent = Counter(r.target_id for r in rows if r.status == "sent")
        by_emulator = sent_targets(emulator)
        calls = len(emulator.messages)
    assert {r.status for r in rows} == {"sent", "skipped"}  # 0 lost
    assert by_emulator == sent and max(by_emulator.values()) == 1  # 0 duplicates
    assert calls == len(STAFF)
    with session_scope() as session:
        parts = session.execute(
            select(OccurrencePartition).where(OccurrencePartition.kind == DISPATCH)
        ).scalars()
        assert {p.state for p in parts} == {DONE}
