"""WeCom's callback encryption written from its published algorithm with pycryptodome, independent
of channels/wecom_crypto.py: what the tests post is what WeCom itself would post."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import struct
import time
from dataclasses import dataclass

from Crypto.Cipher import AES

CORP_ID = "ww-test-corp"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"  # WeCom's documented sample key


@dataclass(frozen=True)
class Posted:
    params: dict[str, str]
    body: bytes


def sha1_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def wecom_encrypt(message: str, *, corp_id: str = CORP_ID, aes_key: str = AES_KEY) -> str:
    key = base64.b64decode(aes_key + "=")
    body = message.encode()
    plain = os.urandom(16) + struct.pack(">I", len(body)) + body + corp_id.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    return base64.b64encode(AES.new(key, AES.MODE_CBC, key[:16]).encrypt(plain)).decode()


def wecom_decrypt(encrypt: str, *, aes_key: str = AES_KEY) -> str:
    key = base64.b64decode(aes_key + "=")
    plain = AES.new(key, AES.MODE_CBC, key[:16]).decrypt(base64.b64decode(encrypt))
    plain = plain[: -plain[-1]]
    (length,) = struct.unpack(">I", plain[16:20])
    return plain[20 : 20 + length].decode()


def post(message: str, *, corp_id: str = CORP_ID, token: str = TOKEN) -> Posted:
    """The query and body WeCom posts for `message` to the callback URL."""
    encrypt = wecom_encrypt(message, corp_id=corp_id)
    timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
    body = (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><AgentID><![CDATA[]]></AgentID>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    ).encode()
    signature = sha1_signature(token, timestamp, nonce, encrypt)
    return Posted({"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}, body)


def event_xml(**fields: str | list[str]) -> str:
    """An event as WeCom words it, e.g. event_xml(Event=..., ChangeType=..., UserID=...)."""
    fields = {"ToUserName": CORP_ID, "FromUserName": "sys", "CreateTime": "1700000000",
              "MsgType": "event", **fields}  # fmt: skip
    parts = []
    for name, value in fields.items():
        if isinstance(value, list):
            items = "".join(f"<Item><![CDATA[{v}]]></Item>" for v in value)
            parts.append(f"<{name}>{items}</{name}>")
        else:
            parts.append(f"<{name}><![CDATA[{value}]]></{name}>")
    return "<xml>" + "".join(parts) + "</xml>"
