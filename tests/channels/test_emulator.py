"""The WeCom emulator spoken to with plain HTTP: token rules, validation, admin API, confirmation."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from channels.emulator import EmulatorConfig, WeComEmulator
from tests.channels.conftest import CORP_ID, CORP_SECRET

SEND = "/cgi-bin/externalcontact/add_msg_template"
RESULT = "/cgi-bin/externalcontact/get_groupmsg_send_result"


def get_token(emulator: WeComEmulator, secret: str = CORP_SECRET) -> dict[str, Any]:
    params = {"corpid": CORP_ID, "corpsecret": secret}
    return requests.get(f"{emulator.url}/cgi-bin/gettoken", params=params, timeout=2).json()


def post(emulator: WeComEmulator, path: str, body: dict[str, Any], token: str | None) -> dict:
    params = {"access_token": token} if token else {}
    return requests.post(emulator.url + path, params=params, json=body, timeout=2).json()


@pytest.fixture
def token(emulator: WeComEmulator) -> str:
    return get_token(emulator)["access_token"]


def single(*targets: str, content: str = "hi") -> dict[str, Any]:
    return {
        "chat_type": "single",
        "sender": "lisi",
        "external_userid": list(targets),
        "text": {"content": content},
    }


def test_gettoken_answers_wecom_shape_and_checks_the_secret(emulator):
    good = get_token(emulator)
    bad = get_token(emulator, secret="nope")

    assert good["errcode"] == 0 and good["expires_in"] == 7200 and good["access_token"]
    assert bad["errcode"] == 40001 and "access_token" not in bad


def test_token_past_its_ttl_answers_42001(emulator, token, clock):
    clock.advance(7200)

    assert post(emulator, SEND, single("wm-1"), token)["errcode"] == 42001


def test_unknown_and_missing_tokens_answer_40014_and_41001(emulator):
    assert post(emulator, SEND, single("wm-1"), "forged")["errcode"] == 40014
    assert post(emulator, SEND, single("wm-1"), None)["errcode"] == 41001


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        (single("wm-1", content="好" * 1334), 45002),
        (single("wm-1", content=""), 44004),
        (single(), 41048),
        ({**single(), "external_userid": [f"wm-{i}" for i in range(10001)]}, 40058),
        (
            {
                "chat_type": "group",
                "chat_id_list": [f"wr-{i}" for i in range(2001)],
                "sender": "z",
                "text": {"content": "x"},
            },
            40058,
        ),
        ({"chat_type": "group", "chat_id_list": ["wr-1"], "text": {"content": "x"}}, 40058),
        ({**single("wm-1"), "attachments": [{"msgtype": "image"}] * 10}, 41064),
    ],
    ids=[
        "text-too-long",
        "empty-text",
        "no-targets",
        "too-many-external-ids",
        "too-many-chat-ids",
        "group-without-sender",
        "ten-attachments",
    ],
)
def test_add_msg_template_validates_like_wecom(emulator, token, body, errcode):
    assert post(emulator, SEND, body, token)["errcode"] == errcode


def test_admin_api_merges_config_reports_state_and_resets(emulator, token):
    merged = requests.post(
        f"{emulator.url}/emulator/config", json={"deleted_ids": ["wm-x"]}, timeout=2
    ).json()
    post(emulator, SEND, single("wm-1", "wm-x"), token)
    state = requests.get(f"{emulator.url}/emulator/state", timeout=2).json()
    requests.post(f"{emulator.url}/emulator/reset", timeout=2)
    after = requests.get(f"{emulator.url}/emulator/state", timeout=2).json()

    assert merged["config"]["deleted_ids"] == ["wm-x"]
    assert merged["config"]["corp_id"] == CORP_ID  # merged, not replaced
    assert state["config"]["corp_secret"] == "***"
    assert state["calls"] == {"/cgi-bin/gettoken": 1, SEND: 1}
    assert state["messages"][0]["fail_list"] == ["wm-x"]
    assert after["messages"] == [] and after["calls"] == {}
    assert after["config"]["deleted_ids"] == []


def test_admin_config_rejects_unknown_keys(emulator):
    answer = requests.post(f"{emulator.url}/emulator/config", json={"nonsense": 1}, timeout=2)

    assert answer.status_code == 400 and "nonsense" in answer.json()["errmsg"]


def test_fail_next_skips_gettoken_unless_scoped_to_it(emulator, token):
    emulator.configure(fail_next=[45009, {"errcode": -1, "path": "gettoken"}])

    assert get_token(emulator)["errcode"] == -1
    assert post(emulator, SEND, single("wm-1"), token)["errcode"] == 45009
    assert post(emulator, SEND, single("wm-1"), token)["errcode"] == 0


def test_http_500_next_answers_http_500_then_recovers(emulator, token):
    emulator.configure(http_500_next=1)
    url = f"{emulator.url}{SEND}?access_token={token}"

    assert requests.post(url, json=single("wm-1"), timeout=2).status_code == 500
    assert requests.post(url, json=single("wm-1"), timeout=2).json()["errcode"] == 0


def test_confirm_share_decides_confirmation_deterministically_per_msgid_and_sender(emulator, token):
    emulator.configure(confirm_share=0.5)
    msgids = [post(emulator, SEND, single("wm-1"), token)["msgid"] for _ in range(40)]

    def status(msgid: str) -> int:
        return post(emulator, RESULT, {"msgid": msgid, "userid": "lisi"}, token)["send_list"][0][
            "status"
        ]

    first = [status(m) for m in msgids]
    assert first == [status(m) for m in msgids]
    assert 0 < first.count(1) < len(msgids) and set(first) == {0, 1}


def test_customer_cap_marks_sends_over_the_cap_with_status_3(emulator, token):
    emulator.configure(customer_cap=1)
    post(emulator, SEND, single("wm-1"), token)
    second = post(emulator, SEND, single("wm-1", "wm-2"), token)["msgid"]

    rows = post(emulator, RESULT, {"msgid": second, "userid": "lisi"}, token)["send_list"]

    assert {r["external_userid"]: r["status"] for r in rows} == {"wm-1": 3, "wm-2": 1}


def test_send_result_limit_over_1000_and_bad_cursor_answer_40058(emulator, token):
    msgid = post(emulator, SEND, single("wm-1"), token)["msgid"]

    assert (
        post(emulator, RESULT, {"msgid": msgid, "userid": "lisi", "limit": 1001}, token)["errcode"]
        == 40058
    )
    assert (
        post(emulator, RESULT, {"msgid": msgid, "userid": "lisi", "cursor": "zz"}, token)["errcode"]
        == 40058
    )
    assert post(emulator, RESULT, {"msgid": "nope", "userid": "lisi"}, token)["errcode"] == 41047


def test_cancel_twice_answers_41093(emulator, token):
    msgid = post(emulator, SEND, single("wm-1"), token)["msgid"]
    cancel = "/cgi-bin/externalcontact/cancel_groupmsg_send"

    assert post(emulator, cancel, {"msgid": msgid}, token)["errcode"] == 0
    assert post(emulator, cancel, {"msgid": msgid}, token)["errcode"] == 41093


def test_list_v2_refuses_a_window_over_one_month(emulator, token, clock):
    body = {"chat_type": "single", "start_time": 0, "end_time": 32 * 86400}

    assert (
        post(emulator, "/cgi-bin/externalcontact/get_groupmsg_list_v2", body, token)["errcode"]
        == 40058
    )


def test_stopped_emulator_refuses_connections_and_frees_its_port():
    emulator = WeComEmulator(EmulatorConfig()).start()
    url = emulator.url
    requests.get(f"{url}/emulator/state", timeout=2)
    emulator.stop()

    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/emulator/state", timeout=2)
