"""A thread-safe sliding-window rate limiter: at most `rate` acquisitions in any `per`-second window."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from functools import partial


class RateLimiter:
    """Blocks `acquire()` until fewer than `rate` acquisitions fall in the last `per` seconds.

    A sliding log of the last `rate` acquisition times: whatever window the server counts
    in (fixed minutes or sliding), no `per`-second span ever holds more than `rate` calls.
    `clock` and `sleep` are injectable so tests run on a fake clock.
    """

    def __init__(
        self,
        rate: int,
        per: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        _check(rate, per)
        self.rate = rate
        self.per = per
        self._clock = clock
        self._sleep = sleep
        self._times: deque[float] = deque(maxlen=rate)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate}, per={self.per})"

    def acquire(self) -> float:
        """Take one slot, sleeping until one is free; returns the seconds waited."""
        waited = 0.0
        while (wait := self._try_acquire()) > 0:
            self._sleep(wait)
            waited += wait
        return waited

    def _try_acquire(self) -> float:
        """Record an acquisition now and return 0, or return how long until a slot frees."""
        with self._lock:
            now = self._clock()
            if len(self._times) == self.rate:
                wait = self._times[0] + self.per - now
                if wait > 0:
                    return wait
            self._times.append(now)  # maxlen drops the oldest, which left the window
            return 0.0


class KeyedRateLimiter:
    """One `RateLimiter` per key (a WeCom API path, a robot), created on first use."""

    def __init__(
        self,
        rate: int,
        per: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        _check(rate, per)
        self.rate = rate
        self.per = per
        self._new = partial(RateLimiter, rate, per, clock=clock, sleep=sleep)
        self._limiters: dict[str, RateLimiter] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyedRateLimiter(rate={self.rate}, per={self.per})"

    def acquire(self, key: str) -> float:
        """Take one slot of `key`'s limit, sleeping until one is free; returns the seconds waited."""
        return self._limiter(key).acquire()

    def _limiter(self, key: str) -> RateLimiter:
        with self._lock:
            if key not in self._limiters:
                self._limiters[key] = self._new()
            return self._limiters[key]


def _check(rate: int, per: float) -> None:
    if rate < 1 or per <= 0:
        raise ValueError(f"a rate limit needs rate >= 1 and per > 0, not {rate}/{per}")
