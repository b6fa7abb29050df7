"""Coupons (`issue:`): issued through the chain's system over HTTP once per touch, only for touches
that pass every guard, the code in the text, and never a message when issuing failed."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlmodel import select

from channels import get_channel
from channels.base import Channel
from channels.coupons import CouponClient, CouponRequest, signature
from core.clock import at_local
from core.settings import PROJECT_ROOT, get_settings
from engine.coupons import PREVIEW_CODE
from engine.events import PendingEvent
from engine.preview_events import preview_trigger
from engine.triggers import send_event_step
from models.commerce import Event
from models.coupons import Coupon, begin_issuing
from models.db import session_scope
from models.delivery import Delivery
from soplang.loader import load_sop
from tests.factories import add_customers, add_events, make_world, opt_out

DAY = dt.date(2026, 11, 24)
TEN = at_local(DAY, 10, 0)
SOP = """---
id: coupon-welcome
title: 新好友首单券
kind: trigger
on: contact.added
channel: customer
category: daily
priority: high
steps:
  - {name: main, issue: {coupon: WELCOME-10}}
---
## main
{{ customer.name }}您好，送您首单券，券码{{ coupon.code }}，{{ coupon.expires }}前有效。
"""


@pytest.fixture
def spec(tmp_path: Path):
    path = tmp_path / "coupon-welcome.md"
    path.write_text(SOP, encoding="utf-8")
    return load_sop(path)


@pytest.fixture
def customers(database_url: str) -> list[int]:
    make_world(DAY, database_url)
    return add_customers(3)


@contextmanager
def wecom() -> Iterator[Channel]:
    channel = get_channel(get_settings())
    try:
        yield channel
    finally:
        channel.close()


def events_of(customer_ids: list[int]) -> list[PendingEvent]:
    ids = add_events("contact.added", customer_ids, at=TEN)
    with session_scope(readonly=True) as session:
        rows = session.exec(select(Event).where(Event.id.in_(ids)).order_by(Event.id)).all()
        return [
            PendingEvent(e.id, e.kind, e.customer_id, e.product_id, e.payload, e.occurred_at)
            for e in rows
        ]


def send(spec, events: list[PendingEvent]):
    return send_event_step(wecom, spec, "main", events, now=TEN, day=DAY, flow_run_id=None)


def rows() -> dict[str, Delivery]:
    with session_scope(readonly=True) as session:
        return {d.target_id: d for d in session.exec(select(Delivery))}


def coupons() -> dict[str, Coupon]:
    with session_scope(readonly=True) as session:
        return {c.external_userid: c for c in session.exec(select(Coupon))}


def sent_texts(emulator) -> dict[str, str]:
    return {t: m["content"] for m in emulator.messages for t in m["targets"]}


def test_issued_coupon_code_is_in_the_text_sent(spec, customers, emulator) -> None:
    send(spec, events_of(customers))

    issued = emulator.coupons.issued()
    assert len(issued) == 3 and {e["coupon"] for e in issued} == {"WELCOME-10"}
    recorded = coupons()
    texts = sent_texts(emulator)
    assert set(texts) == set(recorded)
    for external, coupon in recorded.items():
        assert coupon.state == "issued" and coupon.code
        assert f"券码{coupon.code}，" in texts[external]
        expires = coupon.expires_at.astimezone(dt.timezone(dt.timedelta(hours=8))).date()
        assert expires.isoformat() in texts[external]
    assert {d.status for d in rows().values()} == {"sent"}


def test_rerun_after_a_crash_between_issue_and_send_reuses_the_coupon(
    spec, customers, emulator
) -> None:
    events = events_of(customers[:1])
    emulator.configure(http_500_next=1)  # WeCom fails the send: the coupon is issued already
    with pytest.raises(Exception, match="500"):
        send(spec, events)
    assert [d.status for d in rows().values()] == ["failed"]
    first = next(iter(coupons().values()))

    send(spec, events)

    assert [d.status for d in rows().values()] == ["sent"]
    assert [e["outcome"] for e in emulator.coupons.log] == ["issued"]  # asked once, not again
    assert first.code in next(iter(sent_texts(emulator).values()))


def test_a_run_killed_during_the_issue_call_never_issues_twice(
    spec, customers, emulator, tmp_path, monkeypatch
) -> None:
    events = events_of(customers[:1])
    emulator.coupons.configure(delay_seconds=60)  # the chain issues at once, answers late
    monkeypatch.setenv("SOPFLOW_COUPON_READ_TIMEOUT", "120")
    run = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(spec.path), str(events[0].id)],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 60
        while not emulator.coupons.log and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.1)
        assert emulator.coupons.log, "the run never reached the coupon system"
    finally:
        run.kill()  # SIGKILL mid-call: no handler runs, nothing is recorded after the request
        run.wait(timeout=30)
    (left,) = coupons().values()
    assert left.state == "issuing"
    emulator.coupons.configure(delay_seconds=0)
    monkeypatch.setenv("SOPFLOW_COUPON_READ_TIMEOUT", "5")
    get_settings.cache_clear()

    send(spec, events)

    log = emulator.coupons.log
    assert [e["outcome"] for e in log] == ["issued", "repeat"]  # the chain's log: one issue
    assert log[0]["idempotency_key"] == log[1]["idempotency_key"]
    (coupon,) = coupons().values()
    assert coupon.state == "issued" and coupon.code in sent_texts(emulator)[coupon.external_userid]
    assert [d.status for d in rows().values()] == ["sent"]


# The killed run: the same step for the same event, in a process of its own.
KILLED_RUN = """
import sys
from tests.engine.test_coupons import DAY, TEN, wecom
from engine.coupons import PREVIEW_CODE
from engine.events import PendingEvent
from engine.preview_events import preview_trigger
from engine.triggers import send_event_step
from models.commerce import Event
from models.db import session_scope
from soplang.loader import load_sop

spec = load_sop(sys.argv[1])
with session_scope(readonly=True) as session:
    e = session.get(Event, int(sys.argv[2]))
    event = PendingEvent(e.id, e.kind, e.customer_id, e.product_id, e.payload, e.occurred_at)
send_event_step(wecom, spec, "main", [event], now=TEN, day=DAY, flow_run_id=None)
"""


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"sold_out": ["WELCOME-10"]}, "coupon not issued: sold_out"),
        ({"http_500_next": 1}, "coupon not issued: coupon system error: internal"),
        ({"secret": "another-secret"}, "coupon not issued: signature refused (HTTP 401)"),
        ({"delay_seconds": 1.5}, "coupon not issued: no answer from the coupon system within 1 s"),
    ],
)
def test_a_coupon_not_issued_skips_the_touch_with_the_reason_and_sends_nothing(
    spec, customers, emulator, monkeypatch, fault, reason
) -> None:
    monkeypatch.setenv("SOPFLOW_COUPON_READ_TIMEOUT", "1")
    get_settings.cache_clear()
    emulator.coupons.configure(**fault)

    send(spec, events_of(customers[:1]))

    (row,) = rows().values()
    assert row.status == "skipped" and row.reason.startswith(reason), row.reason
    assert emulator.messages == []
    assert next(iter(coupons().values())).state == "failed"


def test_endpoint_down_skips_the_touch(spec, customers, emulator, monkeypatch) -> None:
    with socket_closed() as url:
        monkeypatch.setenv("SOPFLOW_COUPON_URL", url)
        get_settings.cache_clear()
        send(spec, events_of(customers[:1]))
    (row,) = rows().values()
    assert row.status == "skipped"
    assert row.reason.startswith("coupon not issued: coupon system unreachable")
    assert emulator.messages == []


@contextmanager
def socket_closed() -> Iterator[str]:
    """A loopback URL nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}/coupons/issue"


def test_a_guarded_out_touch_issues_nothing(spec, customers, emulator) -> None:
    opt_out(customers[:1], "daily")

    send(spec, events_of(customers[:2]))

    assert len(emulator.coupons.issued()) == 1
    by_status = {d.status: d.target_id for d in rows().values()}
    assert set(coupons()) == {by_status["sent"]}
    assert by_status["skipped"] not in coupons()


def test_a_failed_coupon_is_not_asked_for_again(spec, customers, emulator) -> None:
    events = events_of(customers[:1])
    emulator.coupons.configure(refuse_next=["sold_out"])
    send(spec, events)
    send(spec, events)
    assert [e["outcome"] for e in emulator.coupons.log] == ["refused: sold_out"]
    assert emulator.messages == []


def test_the_emulator_refuses_a_bad_signature_and_answers_one_coupon_per_key(emulator) -> None:
    body = b'{"coupon":"X","idempotency_key":"k"}'
    bad = requests.post(
        emulator.url + "/coupons/issue",
        data=body,
        headers={"X-Sopflow-Timestamp": "1", "X-Sopflow-Signature": "sha256=00"},
        timeout=5,
    )
    assert bad.status_code == 401 and bad.json()["error"] == "bad_signature"
    request = CouponRequest("BIRTHDAY-20", "wmA", "M001", "key-1", "birthday", "greeting")
    with CouponClient(
        emulator.url + "/coupons/issue", emulator.coupons.secret, timeout=(2, 2)
    ) as client:
        first, again = client.issue(request), client.issue(request)
    assert first == again
    assert [e["outcome"] for e in emulator.coupons.log] == ["bad_signature", "issued", "repeat"]
    assert emulator.coupons.coupons["key-1"]["customer"] == {
        "external_userid": "wmA",
        "member_no": "M001",
    }


def test_begin_issuing_keeps_a_settled_row(database_url: str) -> None:
    now = TEN
    row = {"sop_id": "s", "step": "main", "coupon": "C", "external_userid": "wm"}
    row |= {"created_at": now, "updated_at": now}
    with session_scope() as session:
        begin_issuing([Coupon(idempotency_key="k", **row)], session=session)
        session.get(Coupon, "k").state = "issued"
    with session_scope() as session:
        again = begin_issuing([Coupon(idempotency_key="k", **row)], session=session)
    assert again["k"].state == "issued"


def test_the_signature_example_in_the_docs_is_what_sopflow_sends() -> None:
    docs = (PROJECT_ROOT / "docs" / "coupons.md").read_text(encoding="utf-8")
    expected = signature("emulator-coupon-secret", "1764640800", b'{"coupon":"X"}')
    assert f"`{expected}`" in docs


def test_a_preview_shows_a_placeholder_code_and_issues_nothing(spec, customers, emulator) -> None:
    events_of(customers[:1])
    preview = preview_trigger(spec, "main", DAY, kind=None, customer=None, payload=None)
    assert PREVIEW_CODE in preview.text
    assert emulator.coupons.log == [] and coupons() == {}
