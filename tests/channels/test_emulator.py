"""The WeCom emulator spoken to with plain HTTP: token rules, validation, admin API, confirmation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
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
    emulator.configure(customer_cap_month=1)
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


LIST = "/cgi-bin/externalcontact/get_groupmsg_list_v2"
CANCEL = "/cgi-bin/externalcontact/cancel_groupmsg_send"
DAY = 86400


def statuses(emulator: WeComEmulator, msgid: str, token: str) -> dict[str, int]:
    rows = post(emulator, RESULT, {"msgid": msgid, "userid": "lisi"}, token)["send_list"]
    return {r["external_userid"]: r["status"] for r in rows}


@pytest.mark.parametrize(
    ("cap", "gap", "expected"),
    [
        ({"customer_cap_day": 1}, 3600, [1, 3, 3, 3]),  # hourly: only the first that day
        ({"customer_cap_day": 1}, DAY, [1, 1, 1, 1]),  # daily: each on its own day
        ({"customer_cap_week": 2}, DAY, [1, 1, 3, 3]),  # Mon, Tue sent; Wed, Thu refused
        ({"customer_cap_month": 3}, 2 * DAY, [1, 1, 1, 3]),  # Nov 10, 12, 14 sent; 16 refused
        ({"customer_cap_month": 1}, 7 * DAY, [1, 3, 3, 1]),  # Dec 1 starts a new month
    ],
    ids=["day", "next-day", "week", "month", "next-month"],
)
def test_customer_caps_refuse_the_excess_with_status_3(emulator, clock, cap, gap, expected):
    clock.now = 1_762_704_000  # Monday 2025-11-10 00:00 in Shanghai
    emulator.configure(token_ttl=10**8, **cap)
    token = get_token(emulator)["access_token"]
    msgids = []
    for i in range(4):
        msgids.append(post(emulator, SEND, single("wm-1", f"wm-{i + 10}"), token)["msgid"])
        clock.advance(gap)

    results = [statuses(emulator, m, token) for m in msgids]

    assert [r["wm-1"] for r in results] == expected
    assert [r[f"wm-{i + 10}"] for i, r in enumerate(results)] == [1] * 4  # others unaffected


def test_refused_and_unconfirmed_messages_do_not_use_up_the_cap(emulator, token, clock):
    emulator.configure(customer_cap_week=2, confirm_delay_seconds=600)
    cancelled = post(emulator, SEND, single("wm-1"), token)["msgid"]
    post(emulator, CANCEL, {"msgid": cancelled}, token)  # never confirmed, never sent
    sent = [post(emulator, SEND, single("wm-1"), token)["msgid"] for _ in range(3)]
    clock.advance(600)

    assert statuses(emulator, cancelled, token) == {"wm-1": 0}
    assert [statuses(emulator, m, token)["wm-1"] for m in sent] == [1, 1, 3]


def test_caps_count_in_send_order_across_senders(emulator, token):
    emulator.configure(customer_cap_day=1)
    body = {**single("wm-1"), "sender": "wangwu"}
    first = post(emulator, SEND, body, token)["msgid"]
    second = post(emulator, SEND, single("wm-1"), token)["msgid"]

    first_rows = post(emulator, RESULT, {"msgid": first, "userid": "wangwu"}, token)["send_list"]
    assert first_rows[0]["status"] == 1
    assert statuses(emulator, second, token) == {"wm-1": 3}


def test_rate_limit_per_minute_answers_45009_per_api_until_the_minute_passes(
    emulator, token, clock
):
    emulator.configure(rate_limit_per_minute=2)
    answers = [post(emulator, SEND, single("wm-1"), token)["errcode"] for _ in range(3)]
    other_api = post(emulator, LIST, {"start_time": 0, "end_time": 10}, token)["errcode"]
    clock.advance(59)
    still_blocked = post(emulator, SEND, single("wm-1"), token)["errcode"]
    clock.advance(1)
    recovered = post(emulator, SEND, single("wm-1"), token)["errcode"]

    assert answers == [0, 0, 45009]
    assert (other_api, still_blocked, recovered) == (0, 45009, 0)
    assert len(emulator.messages) == 3


def test_max_concurrent_answers_45033_to_requests_beyond_the_limit(emulator, token):
    emulator.configure(max_concurrent=2, delay_seconds=0.3)
    start = threading.Barrier(4)

    def send(_: int) -> int:
        start.wait()
        return post(emulator, SEND, single("wm-1"), token)["errcode"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = sorted(pool.map(send, range(4)))

    assert answers == [0, 0, 45033, 45033]
    assert len(emulator.messages) == 2


def test_lose_answer_next_does_the_work_but_drops_the_connection(emulator, token):
    emulator.configure(lose_answer_next=1)
    url = f"{emulator.url}{SEND}?access_token={token}"

    with pytest.raises(requests.ConnectionError):
        requests.post(url, json=single("wm-1", content="lost"), timeout=2)

    assert [m["content"] for m in emulator.messages] == ["lost"]
    assert requests.post(url, json=single("wm-2"), timeout=2).json()["errcode"] == 0


def test_list_v2_filters_by_window_creator_and_type_and_pages(emulator, token, clock):
    start = int(clock.now)
    for i in range(200):
        body = {**single("wm-1", content=f"m{i}"), "sender": "lisi" if i % 4 else "wangwu"}
        post(emulator, SEND, body, token)
    clock.advance(10)
    post(emulator, SEND, single("wm-1", content="late"), token)
    window = {"chat_type": "single", "start_time": start, "end_time": start + 5}

    first = post(emulator, LIST, {**window, "creator": "lisi"}, token)
    second = post(
        emulator, LIST, {**window, "creator": "lisi", "cursor": first["next_cursor"]}, token
    )
    company = post(emulator, LIST, {**window, "filter_type": 0, "limit": 1}, token)
    member = post(emulator, LIST, {**window, "filter_type": 1}, token)

    rows = first["group_msg_list"] + second["group_msg_list"]
    assert len(first["group_msg_list"]) == 100 and second["next_cursor"] == ""
    assert [r["text"]["content"] for r in rows] == [f"m{i}" for i in range(200) if i % 4]
    assert {r["creator"] for r in rows} == {"lisi"} and all(r["msgid"] for r in rows)
    assert company["group_msg_list"][0]["text"]["content"] == "m0"
    assert member["group_msg_list"] == []


def test_delay_jitter_is_accepted_and_documented_in_state(emulator):
    emulator.configure(delay_jitter_seconds=0.01)

    assert emulator.state()["config"]["delay_jitter_seconds"] == 0.01
