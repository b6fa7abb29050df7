"""The channel interface helpers: chunking, limits, the message value object."""

from __future__ import annotations

import pytest

from channels.base import Channel, MassMessage, chunk_targets, max_targets
from channels.outbox import OutboxChannel
from channels.wecom import WeComClient


def test_chunk_targets_splits_in_order_with_a_short_last_chunk():
    assert list(chunk_targets(["a", "b", "c", "d", "e"], 2)) == [("a", "b"), ("c", "d"), ("e",)]
    assert list(chunk_targets([], 3)) == []


def test_chunk_targets_refuses_a_size_below_one():
    with pytest.raises(ValueError):
        list(chunk_targets(["a"], 0))


def test_max_targets_follows_wecom_limits():
    assert max_targets("group") == 2000
    assert max_targets("single") == 10000


def test_mass_message_stores_targets_as_a_tuple_and_refuses_unknown_chat_types():
    message = MassMessage("single", "lisi", ["wm-1"], "hi")  # type: ignore[arg-type]

    assert message.targets == ("wm-1",)
    with pytest.raises(ValueError):
        MassMessage("robot", "lisi", ("wm-1",), "hi")  # type: ignore[arg-type]


def test_outbox_and_wecom_client_satisfy_the_channel_protocol(tmp_path):
    client = WeComClient("http://127.0.0.1:1", "corp", "secret")

    assert isinstance(OutboxChannel(tmp_path), Channel)
    assert isinstance(client, Channel)
    client.close()
