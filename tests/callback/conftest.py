"""A running receiver (real uvicorn on loopback) over the test's database and emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callback.server import Receiver
from channels.emulator import WeComEmulator
from channels.emulator.directory_world import DirectoryWorld
from core.settings import get_settings, reset_settings
from tests.callback.sealing import AES_KEY, CORP_ID, TOKEN

STAFF = ("zhangwei.bj01", "lina.sh01")


@pytest.fixture
def directory(emulator: WeComEmulator) -> DirectoryWorld:
    """The emulator's directory: the factories' two staff members, no contacts yet."""
    world = DirectoryWorld(staff=list(STAFF), relations={userid: [] for userid in STAFF})
    return emulator.seed_directory(world)


@pytest.fixture
def receiver(
    emulator: WeComEmulator, directory: DirectoryWorld, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Receiver]:
    monkeypatch.setenv("WECOM_CALLBACK_TOKEN", TOKEN)
    monkeypatch.setenv("WECOM_CALLBACK_AES_KEY", AES_KEY)
    monkeypatch.setenv("WECOM_CORP_ID", CORP_ID)
    reset_settings()
    server = Receiver(get_settings(), port=0, poll=0.2).start()
    yield server
    server.stop()
