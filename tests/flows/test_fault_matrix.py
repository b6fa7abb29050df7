"""Faults on the group and 1:1 shapes of the one pipeline: each first run tells the truth, and a
re-run with the fault cleared leaves every touch settled and every recipient sent exactly once
(the emulator's log).

Both shapes share reconciliation and dispatch, so faults that only those stages meet (token,
timeouts, bursts, a locked database) run on one shape each; the faults that cut across a whole
run (WeCom unreachable, lost answers, SIGKILL) run on both.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from channels.emulator.core import WeComEmulator
from core.clock import at_local
from core.settings import PROJECT_ROOT, reset_settings
from flows.community import community_sop
from flows.customers import customer_sop
from models.delivery import DeliveryStatus
from tasks import dispatch
from tests.factories import deliveries, make_world
from tests.flows.test_crash import wait_for
from tests.flows.test_customers import customer_world

DAY = dt.date(2026, 11, 24)
ADD_MSG = "/cgi-bin/externalcontact/add_msg_template"


@dataclass(frozen=True)
class Path_:
    """One send path: how to build its world and run its occurrence."""

    name: str
    sop_id: str
    step: str
    now: dt.datetime

    def run(self, **options):
        if self.name == "group":
            return community_sop(sop_id=self.sop_id, day=DAY, now=self.now, **options)
        return customer_sop(sop_id=self.sop_id, step=self.step, day=DAY, now=self.now, **options)

    def start_process(self, log: Path) -> subprocess.Popen[bytes]:
        """The occurrence in a separate Python process, on this test's database and server."""
        env = {
            **os.environ,
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        command = [sys.executable, "-m", "tests.flows.run_occurrence", self.name, self.sop_id]
        with log.open("wb") as output:
            return subprocess.Popen(
                [*command, self.step, DAY.isoformat(), self.now.isoformat()],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )


GROUP = Path_("group", "morning-price", "main", at_local(DAY, 8, 30))
CUSTOMER = Path_("customer", "dormant-care", "care", at_local(DAY, 10, 0))


def on_shape(shape: Path_) -> pytest.MarkDecorator:
    """Run a test on one shape only (the `path` fixture otherwise gives both)."""
    return pytest.mark.parametrize("path", [shape], indirect=True, ids=lambda p: p.name)


@pytest.fixture(params=[GROUP, CUSTOMER], ids=lambda p: p.name)
def path(
    request: pytest.FixtureRequest,
    emulator: WeComEmulator,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path_:
    """A world for the path, WeCom calls that give up fast and retries without long waits."""
    chosen: Path_ = request.param
    monkeypatch.setenv("WECOM_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("WECOM_READ_TIMEOUT", "1.5")
    monkeypatch.setenv("SOPFLOW_SQLITE_BUSY_SECONDS", "1")
    reset_settings()
    if chosen is GROUP:
        make_world(DAY)
    else:
        customer_world(database_url, tmp_path, monkeypatch)
    monkeypatch.setattr(dispatch.dispatch_senders, "retry_delay_seconds", [0.2, 0.2, 0.2])
    return chosen


def unsettled_rows(now: dt.datetime) -> list[str]:
    """Rows sending, due but unsent (planned/failed), or unknown without a msgid."""
    return [
        r.status
        for r in deliveries()
        if r.status == DeliveryStatus.SENDING
        or (r.status in ("planned", "failed") and (r.not_before is None or r.not_before <= now))
        or (r.status == DeliveryStatus.UNKNOWN and r.msgid is None)
    ]


def assert_truthful(state, now: dt.datetime) -> None:
    """Failed, saying so, exactly when the run left touches unsettled."""
    left = unsettled_rows(now)
    if left:
        assert state.is_failed(), (state, Counter(left))
        assert "touches not settled" in state.message or "failed" in state.message.lower()
    else:
        assert state.is_completed(), state


def assert_settled_and_sent_once(path: Path_, emulator: WeComEmulator) -> None:
    """After the re-run: nothing unsettled; each sendable recipient received exactly once."""
    assert unsettled_rows(path.now) == []
    rows = [r for r in deliveries() if r.status != DeliveryStatus.SKIPPED]
    assert rows and {r.status for r in rows} == {"sent"}
    received = Counter(t for m in emulator.messages for t in m["targets"])
    assert received == Counter({r.target_id: 1 for r in rows})
    carried_by = {t: m["msgid"] for m in emulator.messages for t in m["targets"]}
    assert carried_by == {r.target_id: r.msgid for r in rows}


def rerun_cleared(path: Path_, emulator: WeComEmulator) -> None:
    emulator.configure(
        fail_next=[], http_500_next=0, lose_answer_next=0, delay_seconds=0, delay_paths=[]
    )
    state = path.run(return_state=True)
    assert state.is_completed(), state.message
    assert_settled_and_sent_once(path, emulator)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_wecom_unreachable_from_the_start(
    path: Path_, emulator: WeComEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connection refused at gettoken: nothing left `sending`, the run fails, the re-run sends all."""
    monkeypatch.setenv("WECOM_API_BASE", f"http://127.0.0.1:{closed_port()}")
    reset_settings()

    state = path.run(return_state=True)

    assert state.is_failed() and "due but not sent" in state.message
    statuses = Counter(r.status for r in deliveries())
    assert statuses["sending"] == 0 and statuses["failed"] > 0
    assert all("could not connect" in r.reason for r in deliveries() if r.status == "failed")
    monkeypatch.setenv("WECOM_API_BASE", emulator.url)
    reset_settings()
    rerun_cleared(path, emulator)


@on_shape(GROUP)
def test_token_fetch_failing(path: Path_, emulator: WeComEmulator) -> None:
    """gettoken answers busy every time: the send never left, so nothing is `sending`."""
    emulator.configure(fail_next=[{"errcode": -1, "path": "gettoken"}] * 20)

    state = path.run(return_state=True)

    assert state.is_failed() and "due but not sent" in state.message
    assert emulator.calls[ADD_MSG] == 0
    assert not [r for r in deliveries() if r.status == "sending"]
    rerun_cleared(path, emulator)


def test_lost_answers(path: Path_, emulator: WeComEmulator) -> None:
    """WeCom carries out every call but the answers are lost: the run fails with the touches
    `sending`; the re-run finds them on WeCom and sends nothing twice."""
    emulator.configure(lose_answer_next=1000)

    state = path.run(return_state=True)

    assert state.is_failed() and "without an answer from WeCom" in state.message
    assert_truthful(state, path.now)
    rerun_cleared(path, emulator)


@on_shape(CUSTOMER)
def test_read_timeouts(path: Path_, emulator: WeComEmulator) -> None:
    """Every mass-message answer comes after the read timeout (WeCom acts on the call): the run
    fails with the touches `sending`; the re-run finds them on WeCom and resends nothing."""
    emulator.configure(delay_seconds=2.0, delay_paths=["add_msg_template"])

    state = path.run(return_state=True)

    assert state.is_failed() and "without an answer from WeCom" in state.message
    assert_truthful(state, path.now)
    rerun_cleared(path, emulator)


def sent_by_run(state) -> int:
    """Touches the run says it sent, over every attempt of its tasks."""
    result = state.result(raise_on_failure=False)
    summaries = getattr(result, "summaries", result)
    summaries = summaries if isinstance(summaries, list) else [summaries]
    return sum(n for s in summaries for k, n in s["this_run"].items() if k.startswith("sent"))


@on_shape(CUSTOMER)
@pytest.mark.parametrize(
    "burst",
    [
        {"fail_next": [45009, 45033, -1, 45009]},
        {"fail_next": [45033, -1, 45009, -1, 45033, -1, 45009, -1], "http_500_next": 4},
    ],
    ids=["short-burst", "long-burst"],
)
def test_busy_rate_limit_and_5xx_bursts(path: Path_, emulator: WeComEmulator, burst: dict) -> None:
    """Retried calls succeed or the run fails honestly; what it reports sent counts every attempt."""
    emulator.configure(**burst)

    state = path.run(return_state=True)

    assert_truthful(state, path.now)
    assert sent_by_run(state) == sum(1 for r in deliveries() if r.status == "sent")
    rerun_cleared(path, emulator)


@pytest.mark.slow
def test_sigkill_mid_dispatch(path: Path_, emulator: WeComEmulator, tmp_path: Path) -> None:
    """The process dies while WeCom is creating a message; the re-run settles and finishes."""
    emulator.configure(delay_seconds=1.0)
    log = tmp_path / "run.log"
    process = path.start_process(log)
    wait_for(
        lambda: emulator.calls[ADD_MSG] >= 1 and any(r.status == "sending" for r in deliveries()),
        process,
        log,
    )
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL

    rerun_cleared(path, emulator)


LOCKER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


@contextmanager
def write_lock_during_first_call(
    emulator: WeComEmulator, database: str, seconds: float
) -> Iterator[list[subprocess.Popen[str]]]:
    """Another process takes the database's write lock for `seconds` once WeCom gets its first
    mass-message call: the run cannot record what WeCom answered."""
    lockers: list[subprocess.Popen[str]] = []

    def watch() -> None:
        deadline = time.monotonic() + 60
        while emulator.calls[ADD_MSG] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        command = [sys.executable, "-c", LOCKER, database, str(seconds)]
        lockers.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
        assert lockers[0].stdout is not None and lockers[0].stdout.readline() == "locked\n"

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield lockers
    finally:
        watcher.join(timeout=70)
        for locker in lockers:
            locker.wait(timeout=30)


@on_shape(GROUP)
def test_database_write_locked_longer_than_the_busy_timeout(
    path: Path_, emulator: WeComEmulator, database_url: str
) -> None:
    """The answer of a call cannot be written (busy timeout 1 s, lock held 4 s): the run fails,
    its rows wait in `sending`, and the re-run finds them on WeCom instead of resending."""
    emulator.configure(delay_seconds=0.5)
    database = database_url.split(":///", 1)[1]

    with write_lock_during_first_call(emulator, database, 4.0) as lockers:
        state = path.run(return_state=True)

    assert lockers, "the lock was never taken"
    assert state.is_failed() and "database is locked" in state.message
    assert_truthful(state, path.now)
    rerun_cleared(path, emulator)
