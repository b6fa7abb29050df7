"""1:1 texts render once per segment of the fields they read, and read like a render per customer."""

from __future__ import annotations

import datetime as dt

from engine.customer_context import VIEW_SOURCES, customer_context, customer_view, segment_renderer
from models.audience import CustomerTarget
from soplang.template import compile_template, render

DAY = dt.date(2026, 11, 24)
SINCE = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


def customer(id_: int, region: str, tier: str, owner: str | None = "张伟") -> CustomerTarget:
    return CustomerTarget(
        id_,
        f"wm{id_:04d}",
        f"客户{id_}",
        region,
        tier,
        "dormant",
        SINCE,
        "active",
        None,
        "zw",
        owner,
    )


CUSTOMERS = [
    customer(1, "上海", "gold"),
    customer(2, "上海", "gold"),
    customer(3, "北京", "gold"),
    customer(4, "上海", "silver"),
    customer(5, "上海", "gold", owner=None),
]


def renderer(source: str):
    compiled = compile_template(source, sop_id="care", step="main")
    return compiled, segment_renderer(compiled, day=DAY, sop_id="care", sop_title="关怀")


def test_every_field_of_the_customer_variable_says_what_it_is_made_from() -> None:
    assert VIEW_SOURCES.keys() == customer_view(CUSTOMERS[0]).keys()
    assert set(VIEW_SOURCES.values()) <= set(CustomerTarget._fields)


def test_customers_alike_in_the_fields_a_text_reads_share_one_rendered_text() -> None:
    compiled, render_for = renderer(
        "{{ customer.region }}的{{ customer.tier_label }}会员，顾问{{ customer.owner.name or '我们' }}"
    )

    texts = [render_for(c) for c in CUSTOMERS]

    for c, text in zip(CUSTOMERS, texts, strict=True):
        assert text == render(
            compiled, customer_context(c, day=DAY, sop_id="care", sop_title="关怀")
        )
    assert texts[0] is texts[1]  # same region, tier and owner: rendered once
    assert len(set(texts)) == 4 and texts[4].endswith("顾问我们")


def test_a_text_reading_a_personal_field_or_the_whole_customer_renders_per_customer() -> None:
    _, by_name = renderer("{{ customer.name }}您好")
    _, whole = renderer("{{ customer }}")

    assert [by_name(c) for c in CUSTOMERS[:2]] == ["客户1您好", "客户2您好"]
    assert len({whole(c) for c in CUSTOMERS[:2]}) == 2


def test_extra_variables_are_part_of_the_segment() -> None:
    _, render_for = renderer("{{ customer.region }}：{{ product }}")

    assert render_for(CUSTOMERS[0], {"product": "牛奶"}) == "上海：牛奶"
    assert render_for(CUSTOMERS[1], {"product": "鸡蛋"}) == "上海：鸡蛋"
