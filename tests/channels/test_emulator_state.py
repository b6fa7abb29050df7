"""The emulator's state file: messages, tokens and config survive a restart, a reset and a SIGKILL."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from channels.base import MassMessage
from channels.emulator import EmulatorConfig, WeComEmulator
from channels.wecom import WeComClient
from core.errors import ChannelRejected
from tests.channels.conftest import CORP_ID, CORP_SECRET, FakeClock

CONFIG = EmulatorConfig(corp_id=CORP_ID, corp_secret=CORP_SECRET)
SEND = "/cgi-bin/externalcontact/add_msg_template"


def restart(emulator: WeComEmulator, clock: FakeClock) -> WeComEmulator:
    """Stop `emulator` and start a new one on the same state file and port."""
    port = int(emulator.url.rsplit(":", 1)[1])
    emulator.stop()
    return WeComEmulator(CONFIG, port=port, clock=clock, state=emulator.state_path).start()


def group_message(*chat_ids: str) -> MassMessage:
    return MassMessage("group", "zhangwei.bj01", chat_ids, "今日特价")


def results(client: WeComClient, msgid: str) -> tuple[list[dict], list[dict]]:
    """The message's task list and the sender's send results."""
    tasks = list(client.iter_groupmsg_task(msgid))
    return tasks, list(client.iter_groupmsg_send_result(msgid, "zhangwei.bj01"))


def test_a_restarted_emulator_still_answers_for_earlier_messages(tmp_path: Path, clock) -> None:
    state = tmp_path / "emulator-state.sqlite"
    first = WeComEmulator(CONFIG, clock=clock, state=state).start()
    client = WeComClient(first.url, CORP_ID, CORP_SECRET, timeout=(1.0, 2.0))
    msgid = client.send_mass(group_message("wrA", "wrB")).msgid
    client.remind_groupmsg_send(msgid)
    before = results(client, msgid)
    created = dt.datetime.fromtimestamp(clock.now, dt.UTC)

    second = restart(first, clock)
    try:
        listed = client.find_sent(  # the client's cached token still works, as with WeCom
            "zhangwei.bj01",
            "今日特价",
            created - dt.timedelta(minutes=1),
            created + dt.timedelta(minutes=1),
            chat_type="group",
        )
        assert [row["msgid"] for row in listed] == [msgid]
        assert results(client, msgid) == before
        assert {row["status"] for row in before[1]} == {1}  # both groups, delivered
        assert len(second.messages[0]["reminders"]) == 1
        assert second.tokens_issued == 0  # no new token was needed
    finally:
        client.close()
        second.stop()


def test_reset_clears_the_state_file_too(tmp_path: Path, clock) -> None:
    state = tmp_path / "emulator-state.sqlite"
    with WeComEmulator(CONFIG, clock=clock, state=state) as emulator:
        with WeComClient(emulator.url, CORP_ID, CORP_SECRET, timeout=(1.0, 2.0)) as client:
            msgid = client.send_mass(group_message("wrA")).msgid
        emulator.configure(confirm_share=0.0)
        emulator.reset()

    with WeComEmulator(CONFIG, clock=clock, state=state) as again:
        with WeComClient(again.url, CORP_ID, CORP_SECRET, timeout=(1.0, 2.0)) as client:
            with pytest.raises(ChannelRejected) as error:
                client.get_groupmsg_task(msgid)
        assert error.value.errcode == 41047
        assert again.messages == [] and again.config.confirm_share == 1.0


def test_config_changed_at_run_time_survives_but_credentials_come_from_the_constructor(
    tmp_path: Path, clock
) -> None:
    state = tmp_path / "emulator-state.sqlite"
    with WeComEmulator(CONFIG, clock=clock, state=state) as emulator:
        emulator.configure(confirm_share=0.25, fail_next=[45009, 45009])
        requests.post(f"{emulator.url}{SEND}", timeout=2)  # takes one queued fault

    restarted = WeComEmulator(EmulatorConfig(corp_secret="new-secret"), clock=clock, state=state)
    assert restarted.config.confirm_share == 0.25
    assert restarted.config.fail_next == [45009]
    assert (restarted.config.corp_id, restarted.config.corp_secret) == (None, "new-secret")
    assert "new-secret" not in state.read_bytes().decode("utf-8", "replace")
    restarted.stop()


def test_the_default_keeps_state_in_memory_only(emulator: WeComEmulator) -> None:
    assert emulator.state_path is None
    assert requests.get(f"{emulator.url}/emulator/state", timeout=2).json()["state_file"] is None


def test_a_state_file_of_another_schema_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "emulator-state.sqlite"
    with sqlite3.connect(state) as db:
        db.execute("PRAGMA user_version = 99")

    with pytest.raises(RuntimeError, match="schema 99"):
        WeComEmulator(state=state)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_answered_msgid_survives_a_sigkill_mid_write(tmp_path: Path) -> None:
    """`sopflow emulator --state` killed while 10,000-target messages are being written."""
    state, port = tmp_path / "emulator-state.sqlite", free_port()
    sopflow = Path(sys.executable).parent / "sopflow"
    command = [str(sopflow), "emulator", "--port", str(port), "--state", str(state)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        token = wait_for_token(base, process)
        answered: list[str] = []
        body = {"external_userid": [f"wm{i:06d}" for i in range(10_000)], "text": {"content": "hi"}}

        def send() -> None:
            with requests.Session() as session:
                while len(answered) < 400:
                    try:
                        answer = session.post(
                            f"{base}{SEND}", params={"access_token": token}, json=body, timeout=5
                        ).json()
                    except requests.RequestException:
                        return  # killed
                    answered.append(answer["msgid"])

        senders = [threading.Thread(target=send) for _ in range(4)]
        for sender in senders:
            sender.start()
        while len(answered) < 20 and process.poll() is None:
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)  # while the senders keep writing
        process.wait(10)
        for sender in senders:
            sender.join(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)

    with sqlite3.connect(state) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    restored = WeComEmulator(state=state)
    kept = {m["msgid"]: m for m in restored.messages}
    restored.stop()
    assert len(answered) >= 20
    assert set(answered) <= set(kept)
    assert all(len(kept[msgid]["targets"]) == 10_000 for msgid in answered)


def wait_for_token(base: str, process: subprocess.Popen[bytes]) -> str:
    """An access token once the emulator subprocess answers."""
    params = {"corpid": "corp", "corpsecret": "secret"}
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"the emulator exited with {process.returncode}")
        try:
            return requests.get(f"{base}/cgi-bin/gettoken", params=params, timeout=1).json()[
                "access_token"
            ]
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError("the emulator did not start")
