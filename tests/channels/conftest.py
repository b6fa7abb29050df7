"""Fixtures for channel tests: a fresh WeCom emulator over loopback and a client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from channels.emulator import EmulatorConfig, WeComEmulator
from channels.wecom import WeComClient

CORP_ID = "ww-test-corp"
CORP_SECRET = "S3CRET-do-not-leak-7f3a"


class FakeClock:
    """A wall clock tests move by hand."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        """What a limiter calls to wait: the time passes at once."""
        self.advance(seconds)


@pytest.fixture
def clock() -> FakeClock:
    """The emulator's clock."""
    return FakeClock()


@pytest.fixture
def emulator(clock: FakeClock) -> Iterator[WeComEmulator]:
    """A running emulator that checks the corp id and secret."""
    config = EmulatorConfig(corp_id=CORP_ID, corp_secret=CORP_SECRET)
    with WeComEmulator(config, clock=clock) as emu:
        yield emu


@pytest.fixture
def client(emulator: WeComEmulator) -> Iterator[WeComClient]:
    """A WeCom client against the emulator with short timeouts."""
    with WeComClient(emulator.url, CORP_ID, CORP_SECRET, timeout=(1.0, 2.0)) as wecom:
        yield wecom
