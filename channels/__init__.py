"""Delivery channels behind one interface and `get_channel` to pick one (group robots: `channels.robot`)."""

from __future__ import annotations

from channels.base import Channel, MassMessage, SendReceipt, chunk_targets
from core.settings import Settings

__all__ = ["Channel", "MassMessage", "SendReceipt", "chunk_targets", "get_channel"]


def get_channel(settings: Settings) -> Channel:
    """The channel `settings.channel` names: the outbox (default) or the WeCom API client."""
    if settings.channel == "outbox":
        from channels.outbox import OutboxChannel

        return OutboxChannel(settings.outbox_dir, timezone=settings.timezone)
    if settings.channel == "wecom":
        from channels.wecom import WeComClient

        return WeComClient.from_settings(settings)
    raise ValueError(f"unknown channel {settings.channel!r}: expected 'outbox' or 'wecom'")
