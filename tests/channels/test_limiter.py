"""The sliding-window limiter never lets more than `rate` calls into any `per`-second window."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from channels.limiter import KeyedRateLimiter, RateLimiter
from tests.channels.conftest import FakeClock


class ThreadClock:
    """A fake clock shared by threads: sleeping moves it on; each thread remembers its last read."""

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()
        self._seen = threading.local()

    def __call__(self) -> float:
        with self._lock:
            self._seen.value = self.now
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    @property
    def last_read(self) -> float:
        return self._seen.value


def assert_never_over(times: list[float], rate: int, per: float) -> None:
    times = sorted(times)
    assert all(later - earlier >= per for earlier, later in zip(times, times[rate:], strict=False))


def test_calls_past_the_rate_wait_until_the_oldest_leaves_the_window():
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(3, 60.0, clock=clock, sleep=clock.sleep)
    times, waits = [], []
    for _ in range(7):
        waits.append(limiter.acquire())
        times.append(clock.now)

    assert times == [0, 0, 0, 60, 60, 60, 120]
    assert waits == [0, 0, 0, 60, 0, 0, 60]


def test_spaced_calls_never_wait():
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(2, 60.0, clock=clock, sleep=clock.sleep)
    waits = []
    for _ in range(6):
        waits.append(limiter.acquire())
        clock.advance(30)

    assert waits == [0] * 6


def test_many_threads_never_exceed_the_rate_in_any_window():
    clock = ThreadClock()
    limiter = RateLimiter(10, 60.0, clock=clock, sleep=clock.sleep)

    def take(_: int) -> float:
        limiter.acquire()
        return clock.last_read  # the time the slot was taken, read under the limiter's lock

    with ThreadPoolExecutor(max_workers=8) as pool:
        times = list(pool.map(take, range(200)))

    assert len(times) == 200
    assert_never_over(times, rate=10, per=60.0)
    assert clock.now >= 19 * 60  # 200 calls at 10 a minute need at least 19 more minutes


def test_keyed_limiter_keeps_one_window_per_key():
    clock = FakeClock(start=0.0)
    limiter = KeyedRateLimiter(1, 60.0, clock=clock, sleep=clock.sleep)

    assert [limiter.acquire("a"), limiter.acquire("b"), limiter.acquire("a")] == [0, 0, 60]


@pytest.mark.parametrize(("rate", "per"), [(0, 60.0), (5, 0.0)])
def test_limiter_refuses_a_rate_that_lets_nothing_through(rate, per):
    with pytest.raises(ValueError):
        RateLimiter(rate, per)
    with pytest.raises(ValueError):
        KeyedRateLimiter(rate, per)
