"""Secrets and phone numbers never leak: full occurrences with faults, then every output scanned."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler
from sqlalchemy import select

from channels.emulator import EmulatorConfig, WeComEmulator
from channels.robot import RobotChannel
from channels.wecom import WeComClient
from core.clock import at_local
from core.errors import ChannelError
from core.settings import get_settings, reset_settings
from flows.community import community_sop
from models.db import session_scope
from models.delivery import Message
from models.people import Customer
from tests.factories import add_customers, deliveries, make_world

DAY = dt.date(2026, 11, 24)
MORNING = at_local(DAY, 8, 30)
CORP_ID = "corp-scan-test"
SECRET = "corp-secret-Zq7Xw3Lp9Tn2"
WRONG_SECRET = "wrong-secret-Hk4Vb8Rm1Sd6"
ROBOT_KEY = "robot-key-Pf5Gj2Wc8Yx3"
TOKEN = re.compile(r"emu-[0-9a-f]{32}")  # every access token the emulator issues
LIST_V2 = "get_groupmsg_list_v2"


@pytest.fixture
def phones(database_url: str) -> list[str]:
    """The community world plus customers with phone numbers (the demo tables hold phones)."""
    make_world(DAY)
    ids = add_customers(5)
    with session_scope() as session:
        found = session.execute(select(Customer.phone).where(Customer.id.in_(ids))).scalars()  # type: ignore[union-attr]
        return [phone for phone in found if phone]


@pytest.fixture
def wecom(monkeypatch: pytest.MonkeyPatch, phones: list[str]) -> Iterator[WeComEmulator]:
    """An emulator checking a distinctive corp secret, and one group robot."""
    config = EmulatorConfig(corp_id=CORP_ID, corp_secret=SECRET, robot_keys=[ROBOT_KEY])
    with WeComEmulator(config) as server:
        for name, value in {
            "SOPFLOW_CHANNEL": "wecom",
            "WECOM_API_BASE": server.url,
            "WECOM_CORP_ID": CORP_ID,
            "WECOM_CORP_SECRET": SECRET,
            "WECOM_CONNECT_TIMEOUT": "0.5",
            "WECOM_READ_TIMEOUT": "2",
            "SOPFLOW_ROBOT_KEYS": json.dumps({"ops": ROBOT_KEY}),
        }.items():
            monkeypatch.setenv(name, value)
        reset_settings()
        yield server


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record at DEBUG, the HTTP libraries' included."""
    for name in (None, "urllib3", "requests", "prefect", "channels", "tasks", "flows"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def run() -> UUID:
    """Run the occurrence; the id of its flow run."""
    state = community_sop(sop_id="morning-price", day=DAY, now=MORNING, return_state=True)
    return state.state_details.flow_run_id


def prefect_records(flow_run_ids: list[UUID]) -> list[str]:
    """What the Prefect server keeps of these runs: logs, artifacts, flow and task run states."""
    APILogHandler().flush()
    return asyncio.run(_prefect_records(flow_run_ids))


async def _prefect_records(flow_run_ids: list[UUID]) -> list[str]:
    runs = FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids))
    texts: list[str] = []
    async with get_client() as client:
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=flow_run_ids)), limit=200
        )
        texts += [log.message for log in logs]
        artifacts = await client.read_artifacts(flow_run_filter=runs)
        texts += [f"{a.key} {a.description} {a.data}" for a in artifacts]
        for run_id in flow_run_ids:
            texts += [repr(s) for s in await client.read_flow_run_states(run_id)]
        for task_run in await client.read_task_runs(flow_run_filter=runs):
            texts += [
                f"{s.name} {s.message}" for s in await client.read_task_run_states(task_run.id)
            ]
    assert artifacts and logs
    return texts


def database_records() -> list[str]:
    """Every Delivery row (reasons included) and every rendered Message."""
    with session_scope() as session:
        messages = [m.content for m in session.execute(select(Message)).scalars()]
    return [repr(row.model_dump()) for row in deliveries()] + messages


def forbidden(phones: list[str], *extra: str) -> list[str]:
    return [SECRET, WRONG_SECRET, ROBOT_KEY, *phones, *extra]


def leaks(texts: list[str], phones: list[str], *extra: str) -> list[str]:
    """The texts that carry a secret, an access token or a phone number."""
    return [
        text
        for text in texts
        if TOKEN.search(text) or any(value in text for value in forbidden(phones, *extra))
    ]


def faulty_exchanges(wecom: WeComEmulator, phone: str) -> list[ChannelError]:
    """Calls that fail, with the secrets in their requests: what their errors say."""
    errors: list[ChannelError] = []
    settings = get_settings()
    with RobotChannel.from_settings(settings) as robot:
        robot.post_text("ops", "门店晨会 9:00", mentioned_mobile_list=[phone])
        wecom.configure(robot_disabled_keys=[ROBOT_KEY])
        with pytest.raises(ChannelError) as disabled:
            robot.post_text("ops", "门店晨会 9:00", mentioned_mobile_list=[phone])
        errors.append(disabled.value)
    with WeComClient(wecom.url, CORP_ID, WRONG_SECRET) as client:
        with pytest.raises(ChannelError) as refused:
            client.access_token()
        errors.append(refused.value)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"
    with WeComClient(closed, CORP_ID, SECRET, timeout=(0.5, 0.5)) as client:
        with pytest.raises(ChannelError) as unreachable:
            client.access_token()
        errors.append(unreachable.value)
    return errors


def test_a_wecom_occurrence_with_faults_leaks_no_secret_token_key_or_phone(
    wecom: WeComEmulator, phones: list[str], debug_logs: pytest.LogCaptureFixture
) -> None:
    wecom.configure(fail_next=[42001, -1], lose_answer_next=1)  # expired token, busy, lost answer
    first = run()
    wecom.configure(http_500_next=1, fail_next=[{"errcode": 45009, "path": LIST_V2}])
    second = run()  # reconciling the lost answer meets an HTTP 500, then 45009
    errors = faulty_exchanges(wecom, phones[0])

    rows = deliveries()
    assert sorted(r.status for r in rows) == ["sent", "sent", "sent", "skipped"]
    assert wecom.tokens_issued >= 2 and len(wecom.robot_posts[ROBOT_KEY]) == 1
    prefect = prefect_records([first, second])
    assert any("Retrying" in text for text in prefect)  # the faults made the dispatch retry
    texts = [
        debug_logs.text,
        *(r.getMessage() for r in debug_logs.records),
        *prefect,
        *database_records(),
        *(f"{e} {e!r} {e.args}" for e in errors),
    ]
    assert any("/cgi-bin/gettoken" in text for text in texts)  # urllib3's lines were captured
    assert leaks(texts, phones) == []


def outbox_text(folder: Path) -> list[str]:
    return [path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.jsonl"))]


def test_an_outbox_occurrence_leaks_no_secret_or_phone(
    phones: list[str], monkeypatch: pytest.MonkeyPatch, debug_logs: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WECOM_CORP_SECRET", SECRET)
    monkeypatch.setenv("SOPFLOW_ROBOT_KEYS", json.dumps({"ops": ROBOT_KEY}))
    reset_settings()

    run_id = run()

    lines = outbox_text(get_settings().outbox_dir)
    assert lines and sum(len(json.loads(x)["targets"]) for x in lines[0].splitlines()) == 3
    texts = [debug_logs.text, *lines, *database_records()]
    texts += prefect_records([run_id])
    assert leaks(texts, phones) == []
