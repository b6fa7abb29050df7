"""The naive way, for comparison: one Prefect task run per message (render, record, send)."""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

import jinja2
from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from channels.base import MassMessage
from channels.wecom import WeComClient
from models.db import session_scope
from models.delivery import Delivery
from sopflow.settings import get_settings


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


@flow(name="naive-one-task-per-message")
def naive(rows: list[tuple[Any, ...]], source: str) -> int:
    """One task run per recipient: what sopflow's batching avoids."""
    return len(send_one.map(rows, unmapped(source)).result())
