"""Crash safety: rows caught in `sending` are reconciled before any resend; nothing goes out twice."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL
from sqlalchemy import update

from channels.emulator.core import WeComEmulator
from core.clock import at_local, utcnow
from core.errors import UnsettledTouches
from core.settings import PROJECT_ROOT, get_settings, reset_settings
from engine.dispatch import UNANSWERED
from engine.reconcile import FOUND
from flows.community import community_sop
from models.db import session_scope
from models.delivery import Delivery, DeliveryStatus
from tests.factories import deliveries, make_world

DAY = dt.date(2026, 11, 24)
MORNING = at_local(DAY, 8, 30)
ADD_MSG = "/cgi-bin/externalcontact/add_msg_template"
LIST_V2 = "get_groupmsg_list_v2"
LIVE_GROUPS = 3  # groups of the world with morning deals; a fourth is skipped (no deals)


@pytest.fixture
def fast_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """WeCom calls that give up fast, so an interrupted send settles within seconds."""
    monkeypatch.setenv("WECOM_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("WECOM_READ_TIMEOUT", "1.5")
    reset_settings()


@pytest.fixture
def world(emulator: WeComEmulator, fast_timeouts: None):
    return make_world(DAY)


def run() -> list[dict]:
    return community_sop(sop_id="morning-price", day=DAY, now=MORNING)


def unsettled_run(expected: str) -> list[dict]:
    """A run that ends Failed because it left touches unsettled; its summaries."""
    with pytest.raises(UnsettledTouches, match=expected) as failed:
        run()
    return failed.value.summaries


def row(delivery_id: int) -> Delivery:
    return next(r for r in deliveries() if r.id == delivery_id)


def assert_every_group_sent_exactly_once(messages: list[dict]) -> None:
    """0 duplicates, 0 lost: each live group has one message, recorded with its msgid."""
    rows = deliveries()
    assert sorted(r.status for r in rows) == ["sent"] * LIVE_GROUPS + ["skipped"]
    sent = {r.target_id: r.msgid for r in rows if r.status == "sent"}
    assert Counter(t for m in messages for t in m["targets"]) == Counter(sent.keys())
    carried_by = {t: m["msgid"] for m in messages for t in m["targets"]}
    assert carried_by == sent


def start_run(log: Path) -> subprocess.Popen[bytes]:
    """`community_sop` in a separate Python process, on this test's database, emulator and server."""
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    command = [sys.executable, "-m", "tests.flows.run_occurrence", "group", "morning-price", "main"]
    with log.open("wb") as output:
        return subprocess.Popen(
            [*command, DAY.isoformat(), MORNING.isoformat()],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_for(
    condition: Callable[[], bool], process: subprocess.Popen[bytes], log: Path, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the run ended before the crash:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for the run:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)


def sending_ids() -> list[int]:
    return [r.id for r in deliveries() if r.status == DeliveryStatus.SENDING]


@pytest.mark.slow
def test_a_run_killed_mid_dispatch_is_reconciled_and_rerun_without_duplicates(
    world, emulator: WeComEmulator, tmp_path: Path
) -> None:
    """SIGKILL while WeCom is creating the second group's message; the re-run finds it and
    sends only the third group."""
    emulator.configure(delay_seconds=1.0)
    log = tmp_path / "run.log"
    process = start_run(log)
    wait_for(lambda: emulator.calls[ADD_MSG] >= 2 and bool(sending_ids()), process, log)
    caught = sending_ids()
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL
    emulator.configure(delay_seconds=0)
    statuses = Counter(r.status for r in deliveries())
    assert statuses == {"sent": 1, "sending": 1, "planned": 1, "skipped": 1}

    summaries = run()

    assert summaries[0]["reconciled"] == {"sent": 1}
    assert [(row(i).status, row(i).reason) for i in caught] == [("sent", FOUND)]
    assert_every_group_sent_exactly_once(emulator.messages)
    assert emulator.calls[ADD_MSG] == LIVE_GROUPS


def test_a_lost_answer_is_found_on_wecom_and_never_sent_again(
    world, emulator: WeComEmulator
) -> None:
    emulator.configure(lose_answer_next=1)
    unsettled_run("1 without an answer from WeCom")
    lost = [r for r in deliveries() if r.status == DeliveryStatus.SENDING]
    assert [r.reason for r in lost] == [UNANSWERED]

    summaries = run()

    assert summaries[0]["reconciled"] == {"sent": 1}
    assert (row(lost[0].id).status, row(lost[0].id).reason) == ("sent", FOUND)
    assert_every_group_sent_exactly_once(emulator.messages)


def test_rows_wecom_cannot_be_asked_about_become_unknown_and_are_never_resent(
    world, emulator: WeComEmulator
) -> None:
    emulator.configure(lose_answer_next=1)
    unsettled_run("1 without an answer from WeCom")
    (lost,) = [r for r in deliveries() if r.status == DeliveryStatus.SENDING]
    emulator.configure(fail_next=[{"errcode": -1, "path": LIST_V2}] * 3)  # every attempt busy

    summaries = unsettled_run("1 unknown")

    assert summaries[0]["reconciled"] == {"unknown": 1}
    unknown = row(lost.id)
    assert unknown.status == "unknown" and "could not be asked" in unknown.reason
    assert "[POST /cgi-bin/externalcontact/get_groupmsg_list_v2]" in unknown.reason
    targets = Counter(t for m in emulator.messages for t in m["targets"])
    assert targets == Counter({r.target_id: 1 for r in deliveries() if r.status != "skipped"})
    assert sorted(r.status for r in deliveries()) == ["sent", "sent", "skipped", "unknown"]


def outbox_lines() -> list[dict]:
    folder = get_settings().outbox_dir
    return [
        json.loads(line)
        for path in sorted(folder.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def crash_rows(delivery_ids: list[int]) -> None:
    """As a kill an hour ago would have left them: claimed, `sending`, no msgid."""
    with session_scope() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(delivery_ids))  # type: ignore[union-attr]
            .values(
                status="sending",
                msgid=None,
                reason=None,
                updated_at=utcnow() - dt.timedelta(hours=1),
            )
        )


def test_the_outbox_is_read_back_to_reconcile_what_it_wrote_and_what_it_did_not(
    database_url: str,
) -> None:
    make_world(DAY)
    run()
    written, unwritten, _ = (r for r in deliveries() if r.status == "sent")
    crash_rows([written.id, unwritten.id])
    lines = outbox_lines()
    kept = [line for line in lines if unwritten.target_id not in line["targets"]]
    path = next(get_settings().outbox_dir.glob("*.jsonl"))
    path.write_text("".join(json.dumps(line) + "\n" for line in kept), encoding="utf-8")

    summaries = run()

    assert summaries[0]["reconciled"] == {"planned": 1, "sent": 1}
    assert (row(written.id).status, row(written.id).msgid) == ("sent", written.msgid)
    assert row(written.id).reason == FOUND
    resent = row(unwritten.id)
    assert resent.status == "sent" and resent.msgid != unwritten.msgid
    assert resent.reason is None  # the resend cleared "{NEVER_SENT}"
    assert_every_group_sent_exactly_once(outbox_lines())
