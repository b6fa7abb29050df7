"""Welcome codes and callbacks: the emulator posts WeCom's encrypted events to a receiver, issuing
a WelcomeCode with each new contact, and serves `send_welcome_msg` (20 s, one use per code).

Admin: POST /emulator/callback/config {"url", "token", "aes_key", "corp_id", "retries",
"retry_seconds", "timeout_seconds", "welcome_ttl"}; POST /emulator/callback/event {XML fields,
e.g. "Event", "ChangeType", "UserID", "ExternalUserID"}; POST /emulator/callback/add_contact
{"userid", "external_userid"?, "state"?, "external_contact"?} (the directory gains the contact,
then the event is posted); GET /emulator/callback (codes, welcomes, deliveries).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import requests

from channels.emulator.config import EXTERNALCONTACT, ApiError, JsonDict
from channels.emulator.media import check_attachments
from channels.emulator.wire import check_text
from channels.wecom_crypto import CallbackCrypto

ADMIN = "/emulator/callback"
WELCOME_TTL = 20.0  # seconds a WelcomeCode can be used (WECOM_API.md §5)
ADDS = ("add_external_contact", "add_half_external_contact")


@dataclass
class WelcomeBook:
    """Codes issued with add-contact events, welcomes sent with them, and callback deliveries."""

    url: str = ""
    token: str = ""
    aes_key: str = ""
    corp_id: str = ""
    retries: int = 3  # WeCom re-posts an event it got no answer for (5 s) up to three times
    retry_seconds: float = 5.0
    timeout_seconds: float = 5.0
    welcome_ttl: float = WELCOME_TTL
    codes: dict[str, JsonDict] = field(default_factory=dict)
    welcomes: list[JsonDict] = field(default_factory=list)
    deliveries: list[JsonDict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def public(self) -> JsonDict:
        return {
            "url": self.url,
            "corp_id": self.corp_id,
            "codes": dict(self.codes),
            "welcomes": list(self.welcomes),
            "deliveries": list(self.deliveries),
        }


def book(emulator: Any) -> WelcomeBook:
    """The emulator's welcome book, made on first use."""
    found = getattr(emulator, "_welcome_book", None)
    if found is None:
        found = emulator._welcome_book = WelcomeBook()
    return found


def send_welcome_msg(emulator: Any, _: dict[str, str], body: JsonDict) -> JsonDict:
    """POST externalcontact/send_welcome_msg: once per code, within its validity."""
    welcome = book(emulator)
    code = body.get("welcome_code") or ""
    check_text(body)
    check_attachments(emulator, body.get("attachments"))
    with welcome.lock:
        issued = welcome.codes.get(code)
        if issued is None or emulator.clock() - issued["issued_at"] > welcome.welcome_ttl:
            raise ApiError(41050)
        if issued.get("used_at") is not None:
            raise ApiError(41051)
        issued["used_at"] = emulator.clock()
        welcome.welcomes.append(
            {
                "welcome_code": code,
                "external_userid": issued["external_userid"],
                "userid": issued["userid"],
                "content": (body.get("text") or {}).get("content") or "",
                "attachments": list(body.get("attachments") or []),
                "sent_at": issued["used_at"],
            }
        )
    return {}


def admin(emulator: Any, method: str, path: str, body: JsonDict) -> JsonDict:
    """The `/emulator/callback/...` admin calls."""
    welcome = book(emulator)
    if (method, path) == ("GET", ADMIN):
        return welcome.public()
    if (method, path) == ("POST", f"{ADMIN}/config"):
        for key, value in body.items():
            if key not in _SETTABLE:
                raise KeyError(f"unknown callback config key {key!r}; use {', '.join(_SETTABLE)}")
            setattr(welcome, key, type(getattr(welcome, key))(value))
        CallbackCrypto(welcome.token, welcome.aes_key, welcome.corp_id)  # refuse bad keys now
        return {"url": welcome.url, "corp_id": welcome.corp_id}
    if (method, path) == ("POST", f"{ADMIN}/event"):
        return post_event(emulator, body)
    if (method, path) == ("POST", f"{ADMIN}/add_contact"):
        state = body.get("state") or ""
        change = {**body, "follow_info": {**(body.get("follow_info") or {}), "state": state}}
        with emulator._lock:
            added = emulator.directory.add_contact(change)
        fields = {
            "Event": "change_external_contact",
            "ChangeType": "add_external_contact",
            "UserID": body.get("userid"),
            "ExternalUserID": added["external_userid"],
            "State": state,
        }
        return post_event(emulator, fields)
    raise KeyError(f"no such callback call: {method} {path}")


_SETTABLE = (
    "url", "token", "aes_key", "corp_id", "retries", "retry_seconds", "timeout_seconds",
    "welcome_ttl",
)  # fmt: skip


def post_event(emulator: Any, fields: JsonDict) -> JsonDict:
    """Encrypt the event as WeCom does and POST it to the receiver, re-posting the same event
    when no 200 comes back; an add-contact event gets a fresh WelcomeCode unless it has one."""
    welcome = book(emulator)
    if not welcome.url:
        raise ApiError(40058, f"no receiver: POST {ADMIN}/config with url, token, aes_key first")
    crypto = CallbackCrypto(welcome.token, welcome.aes_key, welcome.corp_id)
    now = int(emulator.clock())
    event = {"ToUserName": welcome.corp_id, "FromUserName": "sys", "CreateTime": str(now),
             "MsgType": "event", **{k: v for k, v in fields.items() if v is not None}}  # fmt: skip
    if event.get("ChangeType") in ADDS and "WelcomeCode" not in event:
        event["WelcomeCode"] = secrets.token_urlsafe(24)
    if event.get("WelcomeCode"):
        with welcome.lock:
            welcome.codes[event["WelcomeCode"]] = {
                "external_userid": event.get("ExternalUserID"),
                "userid": event.get("UserID"),
                "issued_at": emulator.clock(),
                "used_at": None,
            }
    xml = "<xml>" + "".join(_element(k, v) for k, v in event.items()) + "</xml>"
    attempts, status = 0, None
    for attempt in range(1 + max(0, welcome.retries)):
        if attempt:
            time.sleep(welcome.retry_seconds)
        attempts += 1
        nonce, timestamp = secrets.token_hex(8), str(int(time.time()))
        body, signature = crypto.envelope(xml, timestamp, nonce)
        params = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}
        try:
            answer = requests.post(
                welcome.url, params=params, data=body.encode("utf-8"),
                headers={"Content-Type": "text/xml"}, timeout=welcome.timeout_seconds,
            )  # fmt: skip
            status = answer.status_code
        except requests.RequestException:
            status = None
        if status == 200:
            break
    record = {"event": event, "attempts": attempts, "status": status, "delivered": status == 200}
    with welcome.lock:
        welcome.deliveries.append(record)
    return {**record, "welcome_code": event.get("WelcomeCode")}


def _element(name: str, value: Any) -> str:
    if isinstance(value, list):  # MemChangeList: <Item>…</Item> per member
        inner = "".join(f"<Item>{escape(str(v))}</Item>" for v in value)
        return f"<{name}>{inner}</{name}>"
    return f"<{name}>{escape(str(value))}</{name}>"


WELCOME_ROUTES = {("POST", EXTERNALCONTACT + "send_welcome_msg"): send_welcome_msg}
