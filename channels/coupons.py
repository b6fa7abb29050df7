"""The chain's coupon system: one signed HTTP POST per touch to issue a coupon (docs/coupons.md)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from channels.http import connect_failure, never_connected
from core.errors import CouponNotIssued

TIMESTAMP_HEADER = "X-Sopflow-Timestamp"
SIGNATURE_HEADER = "X-Sopflow-Signature"
SIGNATURE_PREFIX = "sha256="
MAX_SKEW_SECONDS = 300  # the receiver refuses timestamps further off than this (replays)
MAX_ANSWER_BYTES = 64 * 1024  # an answer is a small JSON object; more is refused unread
MAX_ID_CHARS = 64  # coupon_id and code as the coupon table keeps them


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 with the secret over `<timestamp>.` followed by the raw body."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


def signature_valid(secret: str, timestamp: str, body: bytes, given: str, *, now: float) -> bool:
    """Whether `given` signs `body` at `timestamp` with `secret`, and the timestamp is recent."""
    try:
        skew = abs(now - int(timestamp))
    except ValueError:
        return False
    expected = signature(secret, timestamp, body)
    return skew <= MAX_SKEW_SECONDS and hmac.compare_digest(expected, given)


@dataclass(frozen=True)
class CouponRequest:
    """What one touch asks the chain for; `idempotency_key` is the touch's own key."""

    coupon: str
    external_userid: str
    member_no: str | None
    idempotency_key: str
    sop: str
    step: str

    def body(self) -> dict[str, Any]:
        customer: dict[str, str] = {"external_userid": self.external_userid}
        if self.member_no:
            customer["member_no"] = self.member_no
        return {
            "coupon": self.coupon,
            "customer": customer,
            "idempotency_key": self.idempotency_key,
            "sop": self.sop,
            "step": self.step,
        }


@dataclass(frozen=True)
class IssuedCoupon:
    """The chain's answer: its id for the coupon, the code the customer uses, when it expires."""

    coupon_id: str
    code: str
    expires_at: dt.datetime  # aware


class CouponClient:
    """Issues coupons at the chain's endpoint on one `requests.Session`; never retries by itself
    (a retry is a new attempt of the touch, with the same idempotency key)."""

    def __init__(self, url: str, secret: str, *, timeout: tuple[float, float]) -> None:
        if not url:
            raise CouponNotIssued("SOPFLOW_COUPON_URL is not set")
        if not secret:
            raise CouponNotIssued("SOPFLOW_COUPON_SECRET is not set")
        self.url, self._secret, self.timeout = url, secret, timeout
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> CouponClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def issue(self, request: CouponRequest) -> IssuedCoupon:
        """The coupon the chain issued for this touch (the same one for a repeated key), or
        `CouponNotIssued` with the reason."""
        body = json.dumps(request.body(), ensure_ascii=False, separators=(",", ":")).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: signature(self._secret, stamp, body),
        }
        deadline = time.monotonic() + self.timeout[0] + self.timeout[1]
        try:
            # No redirects: a 307 would carry the signed body to wherever it points.
            response = self.session.post(
                self.url, data=body, headers=headers, timeout=self.timeout,
                allow_redirects=False, stream=True,
            )  # fmt: skip
            with response:
                raw = _read_answer(response, deadline)
        except requests.RequestException as exc:
            raise CouponNotIssued(_transport_reason(exc, self.timeout)) from None
        except urllib3.exceptions.HTTPError as exc:  # the body broke off or timed out
            raise CouponNotIssued(
                f"coupon system answer broke off ({type(exc).__name__})"
            ) from None
        return _answer(response.status_code, raw)


def _read_answer(response: requests.Response, deadline: float) -> bytes:
    """The answer's body, refused when over MAX_ANSWER_BYTES or still coming at `deadline` (a
    server sending a byte a second never trips the read timeout by itself)."""
    raw = b""
    while chunk := response.raw.read1(8192, decode_content=True):  # whatever has come, at once
        raw += chunk
        if len(raw) > MAX_ANSWER_BYTES:
            raise CouponNotIssued(
                f"coupon system answer is over {MAX_ANSWER_BYTES // 1024} KB; it should be a "
                "small JSON object (docs/coupons.md)"
            )
        if time.monotonic() > deadline:
            raise CouponNotIssued("coupon system answer still coming after the read timeout")
    return raw


def _transport_reason(exc: requests.RequestException, timeout: tuple[float, float]) -> str:
    if never_connected(exc):
        return f"coupon system unreachable ({connect_failure(exc)})"
    if isinstance(exc, requests.Timeout):
        return f"no answer from the coupon system within {timeout[1]:g} s"
    return f"coupon system connection failed ({type(exc).__name__})"


def _answer(status: int, raw: bytes) -> IssuedCoupon:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: `[[[[…` nested past Python's limit
        data = None
    if not isinstance(data, dict):
        data = {}
    if status == 401:
        raise CouponNotIssued("signature refused (HTTP 401): check SOPFLOW_COUPON_SECRET")
    if 300 <= status < 400:
        raise CouponNotIssued(
            f"coupon system answered a redirect (HTTP {status}); set SOPFLOW_COUPON_URL to "
            "the address it issues coupons at"
        )
    if status >= 400 or "error" in data:
        error = str(data.get("error") or f"HTTP {status}")[:80]
        raise CouponNotIssued(error if status < 500 else f"coupon system error: {error}")
    try:
        expires = dt.datetime.fromisoformat(str(data["expires_at"]))
        coupon_id, code = str(data["coupon_id"]), str(data["code"])
    except (KeyError, ValueError):
        raise CouponNotIssued("coupon system answer lacks coupon_id, code or expires_at") from None
    if not code or expires.tzinfo is None:
        raise CouponNotIssued("coupon system answer has an empty code or a naive expires_at")
    if len(coupon_id) > MAX_ID_CHARS or len(code) > MAX_ID_CHARS:
        # Cut short, the code in the customer's text would not redeem.
        raise CouponNotIssued(
            f"coupon system answer has a coupon_id or code over {MAX_ID_CHARS} characters"
        )
    return IssuedCoupon(coupon_id, code, expires)
