"""The WeCom client against the emulator over loopback: sends, token handling, errors, results."""

from __future__ import annotations

import logging
import traceback
from concurrent.futures import ThreadPoolExecutor

import pytest

from channels import get_channel
from channels.base import MAX_CHAT_IDS, MAX_TEXT_BYTES, MassMessage
from channels.emulator import WeComEmulator
from channels.limiter import KeyedRateLimiter
from channels.outbox import OutboxChannel
from channels.wecom import WeComClient
from core.errors import (
    ChannelAuthError,
    ChannelError,
    ChannelRateLimited,
    ChannelRejected,
    ChannelTransient,
)
from core.settings import Settings
from tests.channels.conftest import CORP_ID, CORP_SECRET

SEND = "/cgi-bin/externalcontact/add_msg_template"
TOKEN = "/cgi-bin/gettoken"
RESULT = "/cgi-bin/externalcontact/get_groupmsg_send_result"


def group(*chat_ids: str, content: str = "早上好 ☀️") -> MassMessage:
    return MassMessage(chat_type="group", sender="zhangsan", targets=chat_ids, content=content)


def single(*external_ids: str, content: str = "会员日提醒") -> MassMessage:
    return MassMessage(chat_type="single", sender="lisi", targets=external_ids, content=content)


def calls(emulator: WeComEmulator, path: str) -> int:
    return emulator.state()["calls"].get(path, 0)


def full_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


def test_group_send_round_trip_records_chat_ids_and_returns_msgid(client, emulator):
    receipt = client.send_mass(group("wr-1", "wr-2"))

    (recorded,) = emulator.messages
    assert receipt.msgid == recorded["msgid"]
    assert receipt.fail_list == ()
    assert recorded["chat_type"] == "group"
    assert recorded["sender"] == "zhangsan"
    assert recorded["targets"] == ["wr-1", "wr-2"]
    assert recorded["content"] == "早上好 ☀️"


def test_single_send_round_trip_records_external_userids(client, emulator):
    receipt = client.send_mass(single("wm-a", "wm-b", "wm-c"))

    (recorded,) = emulator.messages
    assert receipt.msgid == recorded["msgid"]
    assert recorded["chat_type"] == "single"
    assert recorded["targets"] == ["wm-a", "wm-b", "wm-c"]


def test_token_is_fetched_once_for_many_sends(client, emulator):
    for i in range(5):
        client.send_mass(single(f"wm-{i}"))

    assert calls(emulator, TOKEN) == 1
    assert calls(emulator, SEND) == 5


def test_concurrent_sends_share_one_token_fetch(client, emulator):
    with ThreadPoolExecutor(max_workers=8) as pool:
        receipts = list(pool.map(lambda i: client.send_mass(single(f"wm-{i}")), range(32)))

    assert calls(emulator, TOKEN) == 1
    assert len({r.msgid for r in receipts}) == 32


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
def test_token_errcode_refetches_token_and_retries_call_once(client, emulator, errcode):
    client.send_mass(single("wm-1"))
    emulator.configure(fail_next=[errcode])

    receipt = client.send_mass(single("wm-2"))

    assert receipt.msgid
    assert calls(emulator, TOKEN) == 2
    assert calls(emulator, SEND) == 3
    assert len(emulator.messages) == 2


def test_token_expired_on_emulator_clock_is_refreshed_transparently(client, emulator, clock):
    client.send_mass(single("wm-1"))
    clock.advance(7200)

    client.send_mass(single("wm-2"))

    assert calls(emulator, TOKEN) == 2
    assert len(emulator.messages) == 2


def test_token_unknown_after_emulator_reset_is_refreshed_transparently(client, emulator):
    client.send_mass(single("wm-1"))
    emulator.reset()

    client.send_mass(single("wm-2"))

    assert calls(emulator, TOKEN) == 1  # counts were reset: this is the re-fetch
    assert len(emulator.messages) == 1


def test_token_errcode_twice_raises_auth_error_after_single_retry(client, emulator):
    client.send_mass(single("wm-1"))
    emulator.configure(fail_next=[42001, 42001])

    with pytest.raises(ChannelAuthError) as caught:
        client.send_mass(single("wm-2"))

    assert caught.value.errcode == 42001
    assert calls(emulator, SEND) == 3
    assert calls(emulator, TOKEN) == 2


def test_wrong_corp_secret_raises_auth_error_without_retry(emulator):
    with WeComClient(emulator.url, CORP_ID, "wrong-secret") as bad:
        with pytest.raises(ChannelAuthError) as caught:
            bad.send_mass(single("wm-1"))

    assert caught.value.errcode == 40001
    assert calls(emulator, TOKEN) == 1
    assert calls(emulator, SEND) == 0


def test_system_busy_raises_transient_with_errcode_and_no_retry(client, emulator):
    emulator.configure(fail_next=[-1])

    with pytest.raises(ChannelTransient) as caught:
        client.send_mass(single("wm-1"))

    assert caught.value.errcode == -1
    assert not isinstance(caught.value, ChannelRateLimited)
    assert calls(emulator, SEND) == 1


@pytest.mark.parametrize("errcode", [45009, 45033])
def test_rate_limit_errcodes_raise_rate_limited_with_errcode(client, emulator, errcode):
    emulator.configure(fail_next=[errcode])

    with pytest.raises(ChannelRateLimited) as caught:
        client.send_mass(group("wr-1"))

    assert caught.value.errcode == errcode
    assert calls(emulator, SEND) == 1


def test_http_500_raises_transient_with_http_status(client, emulator):
    emulator.configure(http_500_next=1)

    with pytest.raises(ChannelTransient) as caught:
        client.send_mass(group("wr-1"))

    assert caught.value.http_status == 500
    assert client.send_mass(group("wr-1")).msgid  # the next call goes through


def test_read_timeout_raises_transient(emulator):
    emulator.configure(delay_seconds=0.5)
    with WeComClient(emulator.url, CORP_ID, CORP_SECRET, timeout=(1.0, 0.1)) as slow:
        with pytest.raises(ChannelTransient, match="timed out"):
            slow.send_mass(single("wm-1"))


def test_unknown_errcode_raises_rejected(client, emulator):
    emulator.configure(fail_next=[48002])

    with pytest.raises(ChannelRejected) as caught:
        client.send_mass(single("wm-1"))

    assert caught.value.errcode == 48002
    assert "no permission" in str(caught.value)


@pytest.mark.parametrize(
    ("message", "errcode"),
    [
        (single("wm-1", content="好" * (MAX_TEXT_BYTES // 3 + 1)), 45002),
        (group(*[f"wr-{i}" for i in range(MAX_CHAT_IDS + 1)]), 40058),
        (single(), 41048),
        (single("wm-1", content=" "), 44004),
    ],
    ids=["text-over-4000-bytes", "too-many-chat-ids", "no-targets", "empty-text"],
)
def test_invalid_message_rejected_before_any_http_call(client, emulator, message, errcode):
    with pytest.raises(ChannelRejected) as caught:
        client.send_mass(message)

    assert caught.value.errcode == errcode
    assert emulator.state()["calls"] == {}


def test_text_of_exactly_4000_bytes_is_sent(client, emulator):
    client.send_mass(single("wm-1", content="a" * MAX_TEXT_BYTES))

    assert len(emulator.messages) == 1


def test_deleted_and_unknown_ids_come_back_in_fail_list(client, emulator):
    emulator.configure(deleted_ids=["wm-gone"], unknown_ids=["wm-bogus"])

    receipt = client.send_mass(single("wm-1", "wm-gone", "wm-2", "wm-bogus"))

    assert receipt.fail_list == ("wm-gone", "wm-bogus")


def test_secret_and_token_never_appear_in_errors_or_logs(emulator, caplog):
    caplog.set_level(logging.DEBUG)
    wecom = WeComClient(emulator.url, CORP_ID, CORP_SECRET, timeout=(1.0, 2.0))
    wecom.send_mass(single("wm-1"))
    tokens = [wecom.access_token()]
    errors: list[ChannelError] = []

    emulator.configure(fail_next=[42001, 42001])  # refresh, then give up
    with pytest.raises(ChannelAuthError) as auth:
        wecom.send_mass(single("wm-2"))
    errors.append(auth.value)
    tokens.append(wecom.access_token())
    emulator.stop()  # connection refused, first with the cached token in the URL …
    with pytest.raises(ChannelTransient) as refused:
        wecom.send_mass(single("wm-3"))
    errors.append(refused.value)
    wecom.invalidate_token()  # … then with the secret in the gettoken URL
    with pytest.raises(ChannelTransient) as refused_gettoken:
        wecom.send_mass(single("wm-4"))
    errors.append(refused_gettoken.value)

    assert tokens[0] != tokens[1]
    assert "/cgi-bin/gettoken" in str(refused_gettoken.value)
    for secret in [CORP_SECRET, *tokens]:
        assert all(secret not in full_text(exc) for exc in errors)
        assert secret not in caplog.text
        assert secret not in repr(wecom)
    wecom.close()


def test_get_channel_builds_outbox_by_default_and_wecom_client_on_request(tmp_path):
    outbox = get_channel(Settings(SOPFLOW_DATA_DIR=tmp_path))
    wecom = get_channel(
        Settings(
            SOPFLOW_CHANNEL="wecom", WECOM_API_BASE="http://127.0.0.1:1", WECOM_CORP_SECRET="x"
        )
    )

    assert isinstance(outbox, OutboxChannel) and outbox.name == "outbox"
    assert outbox.directory == tmp_path / "outbox"
    assert isinstance(wecom, WeComClient) and wecom.name == "wecom"
    assert wecom.base_url == "http://127.0.0.1:1"
    assert wecom.max_targets("group") == 2000 and wecom.max_targets("single") == 10000
    wecom.close()


def test_client_limiter_holds_each_api_to_its_calls_per_minute(emulator, clock):
    limiter = KeyedRateLimiter(3, clock=clock, sleep=clock.sleep)
    start = clock.now
    with WeComClient(emulator.url, CORP_ID, CORP_SECRET, limiter=limiter) as wecom:
        for i in range(7):
            wecom.send_mass(single(f"wm-{i}"))

    times = [m["create_time"] for m in emulator.messages]
    assert times == [start] * 3 + [start + 60] * 3 + [start + 120]
    assert calls(emulator, TOKEN) == 1  # gettoken has its own window


def test_client_limiter_keeps_the_emulator_rate_limit_from_ever_answering_45009(emulator, clock):
    emulator.configure(rate_limit_per_minute=5)
    limiter = KeyedRateLimiter(5, clock=clock, sleep=clock.sleep)
    with WeComClient(emulator.url, CORP_ID, CORP_SECRET, limiter=limiter) as wecom:
        receipts = [wecom.send_mass(single(f"wm-{i}")) for i in range(12)]

    assert all(r.msgid for r in receipts) and clock.now - 1_700_000_000 == 120


def test_from_settings_takes_the_calls_per_minute(tmp_path):
    settings = Settings(
        SOPFLOW_CHANNEL="wecom", WECOM_API_BASE="http://127.0.0.1:1", WECOM_CALLS_PER_MINUTE=300
    )
    with WeComClient.from_settings(settings) as wecom:
        assert wecom.limiter.rate == 300
