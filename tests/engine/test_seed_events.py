"""The seeds' trigger events: recorded with their payload checked, their variables, and `when:`."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from sqlmodel import func, select

from core.clock import at_local
from core.errors import EventError
from engine.customer_context import customer_view
from engine.events import PendingEvent, record_event
from engine.seed_events import step_events
from engine.trigger_context import event_variables
from models.audience import CustomerTarget
from models.commerce import Event, Order
from models.db import session_scope
from models.people import Customer
from soplang.context import sample_context
from soplang.lint import lint_paths
from soplang.loader import load_sop
from tests.factories import add_customers, add_order, make_world
from tests.soplang.lines import line_of

DAY = dt.date(2026, 11, 24)
TEN = at_local(DAY, 10, 0)
TRIGGERS = Path(__file__).resolve().parents[2] / "sop" / "triggers"


@pytest.fixture
def world(database_url: str):
    world = make_world(DAY, database_url)
    world.customers = add_customers(2, birthday=dt.date(1990, 3, 14)) + add_customers(1, first=2)
    return world


def external(customer_id: int) -> str:
    with session_scope() as session:
        return session.get(Customer, customer_id).external_userid


def record(kind: str, customer_id: int, payload: dict) -> int:
    with session_scope() as session:
        return record_event(
            kind, customer=external(customer_id), payload=payload, now=TEN, session=session
        )


def variables(event_id: int) -> dict | str:
    with session_scope() as session:
        e = session.get(Event, event_id)
        event = PendingEvent(e.id, e.kind, e.customer_id, e.product_id, e.payload, e.occurred_at)
        return event_variables([event], tz="Asia/Shanghai", session=session)[event_id]


def an_order(customer_id: int) -> int:
    add_order(customer_id, TEN - dt.timedelta(days=3), [("F001", 2, 399), ("B001", 1, 5990)])
    with session_scope() as session:
        return session.exec(
            select(func.max(Order.id)).where(Order.customer_id == customer_id)
        ).one()


def test_each_new_kind_is_recorded_and_gets_its_documented_variables(world) -> None:
    born, _, _ = world.customers
    order_id = an_order(born)
    chat_id = world.chat_ids["上海母婴用品群"]
    recorded = {
        "checkin": record("checkin", born, {"streak": 7}),
        "customer.birthday": record("customer.birthday", born, {"kind": "month"}),
        "group.member_joined": record("group.member_joined", born, {"chat_id": chat_id}),
        "order.received": record("order.received", born, {"order_id": order_id}),
    }

    found = {kind: variables(event_id) for kind, event_id in recorded.items()}

    assert found["checkin"]["checkin"] == {"streak": 7}
    assert found["customer.birthday"]["birthday"] == {"kind": "month"}
    assert found["group.member_joined"]["group"]["name"] == "上海母婴用品群"
    assert found["group.member_joined"]["group"]["owner"]["name"] == "李娜"
    assert found["order.received"]["order"] == {
        "id": f"SO20261121{order_id:04d}",
        "total": 2 * 399 + 5990,
        "item_count": 3,
    }
    for kind, values in found.items():
        sample = sample_context("trigger", "customer", on=kind)
        # `coupon` is there only for a step that issues one (`issue:`), not from the event.
        assert set(values) == set(sample) - {"sop", "today", "weekday", "customer", "coupon"}, kind
        for name, value in values.items():
            assert set(value) == set(sample[name]), (kind, name)


@pytest.mark.parametrize(
    ("kind", "payload", "says"),
    [
        ("checkin", {}, "needs `streak` in its payload: days in a row"),
        (
            "checkin",
            {"streak": 0},
            "a positive integer such as 7, e.g. --payload '{\"streak\": 7}'",
        ),
        ("checkin", {"streak": "7"}, "needs `streak`"),
        ("checkin", {"streak": True}, "needs `streak`"),
        ("customer.birthday", {"kind": "week"}, "day (生日当天) or month"),
        ("group.member_joined", {"chat_id": "wrNOPE"}, "'wrNOPE' is none"),
        ("group.member_joined", {}, "needs the chat_id of a known group"),
        ("order.received", {"order_id": 999}, "an order.received event needs a payload naming"),
    ],
)
def test_a_bad_payload_is_refused_with_what_to_write(world, kind, payload, says) -> None:
    with pytest.raises(EventError) as raised:
        record(kind, world.customers[0], payload)

    assert says in str(raised.value)
    with session_scope() as session:
        assert session.exec(select(func.count()).select_from(Event)).one() == 0


def test_a_birthday_event_for_a_customer_without_a_birthday_is_refused(world) -> None:
    with pytest.raises(EventError, match="needs the customer's birthday on record"):
        record("customer.birthday", world.customers[2], {"kind": "day"})


def test_templates_get_the_birthday_month_and_day_never_the_year(world) -> None:
    def target(birthday: dt.date | None) -> CustomerTarget:
        return CustomerTarget(1, "wm1", "李娜", "上海", "gold", "mature", TEN, "active", None,
                              "wangfang", "王芳", birthday)  # fmt: skip

    assert customer_view(target(dt.date(1988, 2, 29)))["birthday"] == {"month": 2, "day": 29}
    assert customer_view(target(None))["birthday"] is None
    assert "1988" not in repr(customer_view(target(dt.date(1988, 2, 29))))


def test_a_step_when_picks_the_events_it_answers_and_counts_the_rest() -> None:
    spec = load_sop(TRIGGERS / "checkin-streak.md")
    events = [
        PendingEvent(i, "checkin", i, None, {"streak": streak}, TEN)
        for i, streak in enumerate((3, 7, 14, 8, 30), start=1)
    ]
    skipped: dict[str, int] = {}

    picked = step_events(spec, "milestone", events, skipped)

    assert [e.payload["streak"] for e in picked] == [7, 14, 30]
    assert skipped == {"not this step's event (when: {streak: [7, 14, 30]})": 2}


def test_lint_refuses_a_when_the_event_cannot_match(tmp_path: Path) -> None:
    text = (TRIGGERS / "birthday.md").read_text(encoding="utf-8")
    (tmp_path / "birthday.md").write_text(text.replace("{kind: day}", "{kind: week}"), "utf-8")
    shutil.copy(TRIGGERS / "order-received-review.md", tmp_path)
    review = tmp_path / "order-received-review.md"
    review.write_text(
        review.read_text(encoding="utf-8").replace("after: 3d,", "after: 3d, when: {streak: 7},"),
        "utf-8",
    )

    problems = [(Path(p.path).name, p.line, p.message) for p in lint_paths(tmp_path)]

    assert problems == [
        (
            "birthday.md",
            line_of((tmp_path / "birthday.md").read_text(encoding="utf-8"), "{kind: week}"),
            "`when: {kind: …}`: week is not a value kind can have; kind is day (生日当天) or "
            "month (生日月的 1 号)",
        ),
        (
            "order-received-review.md",
            10,
            "`when` picks events by their payload and applies only to trigger steps on "
            "customer.birthday, checkin; this is a trigger step on order.received: remove it",
        ),
    ]
