"""The receiver as WeCom calls it: sealed events recorded once, anything else refused."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlmodel import func, select

from callback.server import Receiver
from models.callbacks import WecomCallback
from models.db import session_scope
from tests.callback.sealing import (
    TOKEN,
    event_xml,
    post,
    sha1_signature,
    wecom_decrypt,
    wecom_encrypt,
)

BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    "<xml><Encrypt>&lol3;</Encrypt></xml>"
)


def recorded() -> int:
    with session_scope(readonly=True) as session:
        return session.exec(select(func.count()).select_from(WecomCallback)).one()


def send(receiver: Receiver, message: str, **options) -> requests.Response:
    posted = post(message, **options)
    return requests.post(
        f"{receiver.url}/wecom/callback", params=posted.params, data=posted.body, timeout=10
    )


def contact_event(n: int, change: str = "edit_external_contact") -> str:
    return event_xml(Event="change_external_contact", ChangeType=change, UserID="zhangwei.bj01",
                     ExternalUserID=f"wmNobody{n:04d}", CreateTime=str(1700000000 + n))  # fmt: skip


def test_url_verification_echoes_the_decrypted_echostr(receiver: Receiver) -> None:
    """WeCom's GET verification gets the echostr's plaintext back, and only with our signature."""
    echostr = wecom_encrypt("1616140317555161061")
    params = {"timestamp": "1409659589", "nonce": "263014780", "echostr": echostr}
    params["msg_signature"] = sha1_signature(TOKEN, params["timestamp"], params["nonce"], echostr)
    answer = requests.get(f"{receiver.url}/wecom/callback", params=params, timeout=10)
    assert (answer.status_code, answer.text) == (200, "1616140317555161061")
    forged = {
        **params,
        "msg_signature": sha1_signature("other", "1409659589", "263014780", echostr),
    }
    assert (
        requests.get(f"{receiver.url}/wecom/callback", params=forged, timeout=10).status_code == 403
    )


def test_an_event_is_recorded_once_although_wecom_retries_its_delivery(receiver: Receiver) -> None:
    """A retry carries the same plaintext under a new nonce and random prefix: one row."""
    first, retry = send(receiver, contact_event(1)), send(receiver, contact_event(1))
    assert (first.status_code, first.text, retry.status_code) == (200, "success", 200)
    assert send(receiver, contact_event(2)).status_code == 200
    assert recorded() == 2


def _tampered(message: str) -> tuple[dict[str, str], bytes]:
    """Ciphertext with a flipped byte, signed again as if the token had leaked: padding breaks."""
    posted = post(message)
    encrypt = posted.body.decode().split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    raw = bytearray(base64.b64decode(encrypt))
    raw[-1] ^= 0x55
    bad = base64.b64encode(bytes(raw)).decode()
    params = {**posted.params}
    params["msg_signature"] = sha1_signature(TOKEN, params["timestamp"], params["nonce"], bad)
    return params, posted.body.replace(encrypt.encode(), bad.encode())


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("bad signature", 403),
        ("tampered", 403),
        ("other corp", 403),
        ("not XML", 400),
        ("entity bomb", 400),
        ("no Encrypt", 400),
    ],  # fmt: skip
)
def test_anything_not_sealed_by_wecom_for_us_is_refused_and_nothing_recorded(
    receiver: Receiver, case: str, status: int
) -> None:
    """Forged, tampered, foreign or malformed posts get a 4xx and leave no row."""
    message = contact_event(7)
    posted = post(message)
    params, body = posted.params, posted.body
    if case == "bad signature":
        params = {**params, "msg_signature": "0" * 40}
    elif case == "tampered":
        params, body = _tampered(message)
    elif case == "other corp":
        other = post(message, corp_id="ww-another-corp")
        params, body = other.params, other.body
    elif case == "not XML":
        body = b'{"Encrypt": "x"}'
    elif case == "entity bomb":
        body = BOMB.encode()
    elif case == "no Encrypt":
        body = b"<xml><ToUserName>x</ToUserName></xml>"
    answer = requests.post(f"{receiver.url}/wecom/callback", params=params, data=body, timeout=10)
    assert answer.status_code == status, answer.text
    assert recorded() == 0


def test_200_concurrent_events_and_their_retries_are_each_recorded_once(receiver: Receiver) -> None:
    """200 distinct events, each delivered twice at once, make 200 rows."""
    messages = [contact_event(n) for n in range(200)] * 2
    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(lambda m: send(receiver, m).status_code, messages))
    assert statuses == [200] * 400
    assert recorded() == 200


def test_an_event_that_cannot_be_applied_stays_recorded_for_a_retry(receiver: Receiver) -> None:
    """The directory does not know the contact: processing fails, the raw event is kept."""
    assert send(receiver, contact_event(3)).status_code == 200
    deadline = time.monotonic() + 10
    row = None
    while time.monotonic() < deadline:
        with session_scope(readonly=True) as session:
            row = session.exec(select(WecomCallback)).one()
        if row.attempts:
            break
        time.sleep(0.1)
    assert row is not None and row.attempts >= 1 and row.processed_at is None
    assert "40096" in (row.last_error or "")  # externalcontact/get: unknown external_userid
    assert wecom_decrypt(wecom_encrypt(row.xml)) == row.xml == contact_event(3)
