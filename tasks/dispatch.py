"""Prefect tasks that send: the channel opened under the `wecom-api` limit, retries for transient errors."""

from __future__ import annotations

import datetime as dt
from array import array
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from channels import get_channel
from channels.base import Channel
from channels.media import use_media_store
from core.errors import ChannelTransient
from core.settings import get_settings
from engine.dispatch import DispatchBucket, DispatchResult, dispatch_plan, send_pending
from engine.timing import timed
from models.deliveries import Occurrence
from models.media import MediaUploads
from orchestration.prefect_objects import CALL_LIMIT, ensure_prefect_objects_once


def is_transient(_task: Any, _run: Any, state: Any) -> bool:
    """Retry only failures that may pass (busy, rate limited, 5xx)."""
    try:
        state.result()
    except ChannelTransient:
        return True
    except Exception:
        return False
    return False


# Tasks that talk to a channel: no result caching, and retries with backoff for transient
# failures only (busy, rate limited, 5xx); everything else is a recorded failure.
SENDING_TASK: dict[str, Any] = {
    "cache_policy": NO_CACHE,
    "retries": 3,
    "retry_delay_seconds": [2, 10, 30],
    "retry_condition_fn": is_transient,
}


@contextmanager
def open_channel() -> Iterator[Channel]:
    """The configured channel, holding one slot of the `wecom-api` limit while in use.

    The global concurrency limit keeps all workers within WeCom's call limits; calls inside are
    paced by the channel's own limiter. The limit is created (or resized) before the first
    slot a process takes, and a missing limit is an error, never a silent pass; a failed lease
    renewal only warns, since stopping mid-send would leave rows `sending`.
    """
    channel = get_channel(get_settings())
    use_media_store(channel, MediaUploads())  # one upload per file per 3 days across workers
    try:
        sends_to_wecom = channel.name == "wecom"
        if sends_to_wecom:
            ensure_prefect_objects_once()
        with (
            timed("dispatch"),
            concurrency(CALL_LIMIT, strict=True, raise_on_lease_renewal_failure=False)
            if sends_to_wecom
            else nullcontext(),
        ):
            yield channel
    finally:
        channel.close()


@task(name="plan-dispatch", cache_policy=NO_CACHE)
def plan_dispatch(
    occurrence: Occurrence, now: dt.datetime, rows_per_bucket: int = 300_000
) -> list[DispatchBucket]:
    """Split the occurrence's senders into dispatch batches, so each staff member gets one
    mass-message task per distinct text for the whole occurrence, not one per audience batch."""
    return dispatch_plan(occurrence, now=now, rows_per_bucket=rows_per_bucket)


@task(name="dispatch-senders", **SENDING_TASK)
def dispatch_senders(
    occurrence: Occurrence,
    chat_type: str,
    senders: list[str],
    now: dt.datetime,
    ids: array[int] | None = None,
) -> DispatchResult:
    """Send every rendered row of these senders for the occurrence (the rows `ids`, when the
    plan read them already) and record each outcome."""
    with open_channel() as channel:
        return send_pending(channel, occurrence, chat_type, senders, now=now, ids=ids)
