"""The chain's coupon system, emulated beside WeCom: signed issue requests, one coupon per
idempotency key, a log of every request, and faults (slow, HTTP 500, refusals, lost answers).

    POST /coupons/issue                 the endpoint sopflow calls (docs/coupons.md)
    POST /coupons/emulator/config       faults and the secret, JSON merge
    GET  /coupons/emulator/state        coupons issued by key, and the request log
    POST /coupons/emulator/reset        forget coupons, log and faults
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from channels.coupons import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_valid

PREFIX = "/coupons/"
ISSUE = "/coupons/issue"
ADMIN = "/coupons/emulator/"
DEFAULT_SECRET = "emulator-coupon-secret"
LOCAL_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
VALID_DAYS = 7
Answer = tuple[int, dict[str, Any]] | None


@dataclass
class CouponConfig:
    """How the coupon system behaves; every field can be changed at run time."""

    secret: str = DEFAULT_SECRET
    delay_seconds: float = 0.0  # answer an issue request this late (it is carried out at once)
    http_500_next: int = 0  # answer the next n issue requests with HTTP 500 (nothing issued)
    refuse_next: list[str] = field(default_factory=list)  # errors to answer next, e.g. sold_out
    sold_out: list[str] = field(default_factory=list)  # coupon codes out of stock (HTTP 409)
    lose_answer_next: int = 0  # issue for the next n requests, then drop the connection

    def merged(self, changes: dict[str, Any]) -> CouponConfig:
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise KeyError(f"unknown coupon config keys: {', '.join(unknown)}")
        return dataclasses.replace(copy.deepcopy(self), **copy.deepcopy(changes))

    def public(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "secret": "***"}


class CouponEmulator:
    """The coupon system's state, in memory: coupons by idempotency key and the request log."""

    def __init__(
        self, config: CouponConfig | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._initial = copy.deepcopy(config or CouponConfig())
        self.clock = clock
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.config = copy.deepcopy(self._initial)
            self.coupons: dict[str, dict[str, Any]] = {}  # idempotency key -> the coupon
            self.log: list[dict[str, Any]] = []  # every issue request, answered or not

    def configure(self, **changes: Any) -> CouponConfig:
        with self._lock:
            self.config = self.config.merged(changes)
            return self.config

    @property
    def secret(self) -> str:
        return self.config.secret

    def issued(self) -> list[dict[str, Any]]:
        """Log entries that created a coupon: one per idempotency key, however often it was asked."""
        return [entry for entry in self.log if entry["outcome"] == "issued"]

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "config": self.config.public(),
                "coupons": copy.deepcopy(self.coupons),
                "log": copy.deepcopy(self.log),
            }

    # -- HTTP ----------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """Answer one request under /coupons/: (status, JSON), or None to drop the connection."""
        try:
            if (method, path) == ("POST", ISSUE):
                return self._issue(headers, body)
            if (method, path) == ("POST", ADMIN + "config"):
                changes = orjson.loads(body or b"{}")
                return 200, {"config": self.configure(**changes).public()}
            if (method, path) == ("GET", ADMIN + "state"):
                return 200, self.state()
            if (method, path) == ("POST", ADMIN + "reset"):
                self.reset()
                return 200, {"ok": True}
        except (KeyError, TypeError, ValueError) as err:
            return 400, {"error": "bad_request", "message": str(err)}
        return 404, {"error": "not_found", "message": f"no such endpoint: {method} {path}"}

    def _issue(self, headers: dict[str, str], body: bytes) -> Answer:
        lower = {k.lower(): v for k, v in headers.items()}
        stamp = lower.get(TIMESTAMP_HEADER.lower(), "")
        given = lower.get(SIGNATURE_HEADER.lower(), "")
        with self._lock:
            delay = self.config.delay_seconds
            secret = self.config.secret
        if not signature_valid(secret, stamp, body, given, now=self.clock()):
            with self._lock:
                self._note(None, "bad_signature")
            return 401, {"error": "bad_signature", "message": "signature or timestamp refused"}
        request = orjson.loads(body)
        with self._lock:
            answer = self._answer(str(request["idempotency_key"]), request)
        if delay > 0:  # issued (or refused) already: only the answer is late
            time.sleep(delay)
        return answer

    def _answer(self, key: str, request: dict[str, Any]) -> Answer:
        config = self.config
        if config.http_500_next > 0:
            config.http_500_next -= 1
            self._note(request, "http_500")
            return 500, {"error": "internal", "message": "emulated HTTP 500"}
        known = self.coupons.get(key)
        if known is None:
            refusal = config.refuse_next.pop(0) if config.refuse_next else None
            if refusal is None and request.get("coupon") in config.sold_out:
                refusal = "sold_out"
            if refusal is not None:
                self._note(request, f"refused: {refusal}")
                return 409, {"error": refusal, "message": f"emulated refusal: {refusal}"}
            known = self.coupons[key] = self._new_coupon(key, request)
            self._note(request, "issued", known)
        else:
            self._note(request, "repeat", known)
        if config.lose_answer_next > 0:
            config.lose_answer_next -= 1
            return None  # issued, but the caller never hears of it
        return 200, {k: known[k] for k in ("coupon_id", "code", "expires_at")}

    def _new_coupon(self, key: str, request: dict[str, Any]) -> dict[str, Any]:
        digest = hashlib.sha256(key.encode()).digest()
        code = base64.b32encode(digest).decode()[:10]
        expires = dt.datetime.fromtimestamp(self.clock(), LOCAL_TZ) + dt.timedelta(days=VALID_DAYS)
        expires = expires.replace(hour=23, minute=59, second=59, microsecond=0)
        return {
            "coupon_id": f"CPN{len(self.coupons) + 1:06d}",
            "code": code,
            "expires_at": expires.isoformat(),
            "coupon": request.get("coupon"),
            "customer": request.get("customer"),
        }

    def _note(
        self, request: dict[str, Any] | None, outcome: str, coupon: dict[str, Any] | None = None
    ) -> None:
        self.log.append(
            {
                "at": self.clock(),
                "outcome": outcome,
                "idempotency_key": (request or {}).get("idempotency_key"),
                "coupon": (request or {}).get("coupon"),
                "coupon_id": coupon["coupon_id"] if coupon else None,
                "sop": (request or {}).get("sop"),
                "step": (request or {}).get("step"),
            }
        )
