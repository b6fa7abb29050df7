"""Prefect tasks over the event queue: claim a batch, complete it, hand it back."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from engine.events import Claim, claim, complete, release
from models.db import session_scope


@task(name="claim-events", cache_policy=NO_CACHE)
def claim_events(kind: str, limit: int, now: dt.datetime) -> Claim:
    """Claim the next batch of pending `kind` events for this drain."""
    with session_scope() as session:
        return claim(kind, limit=limit, now=now, session=session)


@task(name="complete-events", cache_policy=NO_CACHE)
def complete_events(batch: Claim, now: dt.datetime) -> int:
    """Mark a claimed batch processed once every trigger SOP has handled it."""
    with session_scope() as session:
        return complete(batch.token, now=now, session=session)


@task(name="release-events", cache_policy=NO_CACHE)
def release_events(batch: Claim) -> int:
    """Hand a batch back when sending it failed: the next drain retries it, not after the lease."""
    with session_scope() as session:
        return release(batch.token, session=session)
