"""The naive way, for comparison: one Prefect task run per message (render, record, send)."""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

import jinja2
from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from sqlalchemy import text

from channels.base import MassMessage
from channels.wecom import WeComClient
from core.settings import get_settings
from models.db import session_scope
from models.delivery import Delivery
from models.vocab import TIERS


@cache
def _client() -> WeComClient:
    return WeComClient.from_settings(get_settings())


@task(cache_policy=NO_CACHE)
def send_one(row: tuple[Any, ...], source: str) -> str:
    """Render, record and send one message."""
    customer_id, external_userid, region, tier_label, sender = row
    text = jinja2.Template(source).render(customer={"region": region, "tier_label": tier_label})
    now = dt.datetime.now(dt.UTC)
    with session_scope() as session:
        delivery = Delivery(
            idempotency_key=f"naive:{external_userid}",
            sop_id="naive",
            step="touch",
            occurrence="naive",
            target_kind="customer",
            target_id=external_userid,
            customer_id=customer_id,
            channel="wecom",
            sender=sender,
            status="sending",
            planned_at=now,
            updated_at=now,
        )
        session.add(delivery)
        session.flush()
        receipt = _client().send_mass(MassMessage("single", sender, (external_userid,), text))
        delivery.status, delivery.msgid = "sent", receipt.msgid
    return receipt.msgid or ""


def recipients(count: int) -> list[tuple[Any, ...]]:
    """The `count` newest active customers: (id, external_userid, region, tier label, owner)."""
    with session_scope(readonly=True) as session:
        rows = session.execute(
            text(
                "SELECT c.id, c.external_userid, c.region, c.tier, s.userid FROM customer c"
                " JOIN staff s ON s.id = c.owner_staff_id WHERE c.contact_state = 'active'"
                " ORDER BY c.id DESC LIMIT :count"
            ),
            {"count": count},
        ).all()
    return [(cid, ext, region, TIERS[tier], sender) for cid, ext, region, tier, sender in rows]


# One thread per connection of the engine's pool (5 + 10 overflow): unbounded, 10,000 threads
# wait for a connection past the pool's timeout and the run fails instead of measuring.
@flow(name="naive-one-task-per-message", task_runner=ThreadPoolTaskRunner(max_workers=15))  # type: ignore[arg-type]
def naive(count: int, source: str) -> int:
    """One task run per recipient: what sopflow's batching avoids. The recipients are read here,
    not passed in: 10,000 of them exceed what Prefect accepts as flow run parameters."""
    return len(send_one.map(recipients(count), unmapped(source)).result())
