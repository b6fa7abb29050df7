"""Every audience key an SOP may write selects exactly the groups or customers it says, on a small world."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import select

from core.clock import at_local, utcnow
from engine.preview import PreviewRequest, preview_sop
from models.audience import customer_id_ranges, customers_in_range, group_id_ranges, groups_in_range
from models.db import session_scope
from models.delivery import HOLDOUT
from models.holdout import is_held_out
from models.people import Store
from soplang.lint import lint_file
from soplang.spec import Audience, CustomerAudience, GroupAudience, Section, SopSpec
from tests.factories import (
    add_customers,
    customer_sop,
    delivery_rows,
    make_world,
    plan_audience,
    tag_customers,
)

DAY = dt.date(2026, 11, 24)
LIVE_GROUPS = ["北京生鲜爱好者群", "北京生鲜二群", "上海母婴用品群", "上海酒水品鉴群"]

# key -> (its value in an SOP, the groups it selects); the dismissed 北京家电老群 never matches.
GROUP_CASES: dict[str, tuple[Any, list[str]]] = {
    "theme": (["生鲜", "家电"], ["北京生鲜爱好者群", "北京生鲜二群"]),
    "region": ("上海", ["上海母婴用品群", "上海酒水品鉴群"]),
    "owner": (["lina.sh01"], ["上海母婴用品群", "上海酒水品鉴群"]),
}

# key -> (its value in an SOP, the customers it selects, by their name in `customer_world`).
CUSTOMER_CASES: dict[str, tuple[Any, list[str]]] = {
    "stage": ("new", ["beijing"]),
    "tier": (["gold", "platinum"], ["gold"]),
    "region": ("北京", ["beijing"]),
    "tags_any": ("宝妈", ["mum", "complaining"]),
    "tags_none": ("投诉中", ["!complaining"]),
    "last_purchase_days": ({"lte": 30}, ["recent"]),
    "store": (["S-0", "上海旗舰店"], ["store_bj", "store_sh"]),
    "gender": ("female", ["woman"]),
    "paid_member": (True, ["paid"]),
    "birthday_month": ([11, 1], ["born_nov"]),
    "source_state": (["store-bj01"], ["from_bj01_qr"]),
}
# Keys applied after the query, by the guards: each has its own test below.
GUARD_KEYS = {"holdout"}


@pytest.fixture
def world(database_url: str):
    return make_world(DAY, database_url)


def group_names(audience: GroupAudience) -> list[str]:
    with session_scope() as session:
        ranges = group_id_ranges(audience, batch_size=2, session=session)
        return [g.name for r in ranges for g in groups_in_range(audience, r, session=session)]


def customer_ids(audience: CustomerAudience, as_of: dt.datetime | None = None) -> list[int]:
    with session_scope() as session:
        ranges = customer_id_ranges(audience, batch_size=3, session=session, as_of=as_of)
        return [
            c.id
            for r in ranges
            for c in customers_in_range(audience, r, session=session, as_of=as_of)
        ]


def customer_world() -> dict[str, int]:
    """One customer per distinguishing value (the rest dormant bronze 上海, last order 45 days ago)."""
    with session_scope() as session:
        stores = {s.code: s.id for s in session.exec(select(Store)).all()}
    now = utcnow()
    varied: dict[str, dict[str, Any]] = {
        "plain": {},
        "beijing": {"stage": "new", "region": "北京"},
        "gold": {"tier": "gold"},
        "mum": {},
        "complaining": {},
        "recent": {"last_order_at": now - dt.timedelta(days=5)},
        "never_ordered": {"last_order_at": None},
        "store_bj": {"store_id": stores["S-0"]},
        "store_sh": {"store_id": stores["S-1"]},
        "woman": {"gender": "female"},
        "man": {"gender": "male"},
        "paid": {"is_paid_member": True},
        "born_nov": {"birthday": dt.date(1990, 11, 3)},
        "born_dec": {"birthday": dt.date(1988, 12, 30)},
        "from_bj01_qr": {"source_state": "store-bj01"},
        "from_sh02_qr": {"source_state": "store-sh02"},
    }
    ids = {
        name: add_customers(1, first=index, **fields)[0]
        for index, (name, fields) in enumerate(varied.items())
    }
    tag_customers("宝妈", [ids["mum"], ids["complaining"]])
    tag_customers("投诉中", [ids["complaining"]])
    return ids


def expected(ids: dict[str, int], names: list[str]) -> list[int]:
    """The ids of `names`; `!name` means everyone but that customer."""
    if names and names[0].startswith("!"):
        return sorted(v for k, v in ids.items() if k != names[0][1:])
    return sorted(ids[name] for name in names)


def test_every_key_the_spec_accepts_is_proven_to_filter() -> None:
    """A key added to the SOP language without a case here (and so, maybe, without a query) fails."""
    assert set(GroupAudience.model_fields) == set(GROUP_CASES)
    assert set(CustomerAudience.model_fields) == set(CUSTOMER_CASES) | GUARD_KEYS


def test_the_ops_guide_documents_exactly_the_keys_the_spec_accepts() -> None:
    """The guide's §4 example parses as an audience (so it documents no key that is ignored) and
    names every key."""
    guide = (Path(__file__).parents[2] / "sop" / "README.md").read_text(encoding="utf-8")
    section = guide.split("## 4. ", 1)[1].split("\n## 5. ", 1)[0]
    example = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])

    audience = Audience(**example["audience"])

    assert audience.groups is not None and audience.customers is not None
    for key in [*GroupAudience.model_fields, *CustomerAudience.model_fields]:
        assert f"{key}:" in section, key


@pytest.mark.parametrize("key", sorted(GROUP_CASES))
def test_each_group_key_selects_exactly_its_groups(world, key: str) -> None:
    value, names = GROUP_CASES[key]

    assert group_names(GroupAudience()) == LIVE_GROUPS
    assert group_names(GroupAudience(**{key: value})) == names


def test_owner_selects_the_groups_of_each_listed_staff_member_and_no_one_else(world) -> None:
    both = GroupAudience(owner=["lina.sh01", "zhangwei.bj01"], region="北京")

    assert group_names(both) == ["北京生鲜爱好者群", "北京生鲜二群"]
    assert group_names(GroupAudience(owner="wangfang")) == []


@pytest.mark.parametrize("key", sorted(CUSTOMER_CASES))
def test_each_customer_key_selects_exactly_its_customers(world, key: str) -> None:
    ids = customer_world()
    value, names = CUSTOMER_CASES[key]

    assert customer_ids(CustomerAudience()) == sorted(ids.values())
    assert customer_ids(CustomerAudience(**{key: value})) == expected(ids, names)


def test_paid_member_false_selects_everyone_but_the_paid_members(world) -> None:
    ids = customer_world()

    assert customer_ids(CustomerAudience(paid_member=False)) == expected(ids, ["!paid"])


def test_birthday_month_this_is_the_runs_month_on_the_local_calendar(world) -> None:
    """16:30 UTC on 30 November is already 1 December in Shanghai."""
    ids = customer_world()
    this = CustomerAudience(birthday_month="this")

    assert customer_ids(this, as_of=at_local(DAY, 10)) == [ids["born_nov"]]
    december = dt.datetime(2026, 11, 30, 16, 30, tzinfo=dt.UTC)
    assert customer_ids(this, as_of=december) == [ids["born_dec"]]


def test_holdout_keeps_its_share_of_the_audience_from_being_sent(world) -> None:
    customers = add_customers(20, first=100)
    spec = customer_sop("holdout-check", holdout=0.5)

    plan_audience(spec, at_local(DAY, 10), DAY)

    rows = delivery_rows("holdout-check")
    held = sorted(i for i, row in rows.items() if row.reason == HOLDOUT)
    assert held == [i for i in customers if is_held_out(i, "holdout-check", 0.5)]
    assert 0 < len(held) < len(customers)
    assert {rows[i].status for i in customers if i not in held} == {"planned"}


@pytest.mark.parametrize(
    ("front", "message"),
    [
        (
            "  groups: {owner_name: [lina.sh01]}",
            "unknown key `owner_name` under `audience.groups` (did you mean `owner`?); "
            "allowed keys: theme, region, owner",
        ),
        ("  customers: {gender: 女}", "write gender `女` as `female`"),
        ("  customers: {birthday_month: 本月}", "write birthday_month `本月` as `this`"),
        ("  customers: {birthday_month: 13}", "birthday_month `13` is not a month"),
    ],
)
def test_lint_refuses_a_key_or_value_the_queries_do_not_know(
    tmp_path: Path, front: str, message: str
) -> None:
    path = tmp_path / "bad-audience.md"
    channel = "group" if "groups" in front else "customer"
    kind = "community" if channel == "group" else "lifecycle"
    path.write_text(
        "---\nid: bad-audience\ntitle: t\n"
        f"kind: {kind}\nchannel: {channel}\ncategory: fresh\n"
        'schedule: {cron: "0 9 * * *"}\naudience:\n'
        f"{front}\n---\n## main\n你好\n",
        encoding="utf-8",
    )

    (problem,) = [p for p in lint_file(path).problems if p.is_error]

    assert problem.line == 9
    assert message in problem.message


def test_preview_of_a_group_sop_with_an_owner_shows_only_that_owners_groups(world) -> None:
    def spec(**groups: Any) -> SopSpec:
        return SopSpec(
            id="owner-preview",
            title="t",
            kind="community",
            channel="group",
            category="baby",
            schedule={"cron": "30 8 * * *"},
            audience={"groups": groups},
            sections={"main": Section(text="{{ group.name }}早上好", first_line=9, heading_line=8)},
        )

    everyone = preview_sop(spec(), PreviewRequest(day=DAY))
    lina = preview_sop(spec(owner=["lina.sh01"]), PreviewRequest(day=DAY))

    assert {userid for userid, _name in everyone.tasks} == {"zhangwei.bj01", "lina.sh01"}
    assert {userid for userid, _name in lina.tasks} == {"lina.sh01"}
    assert lina.audience == "2 groups (live groups with owner lina.sh01)"
    assert lina.shown_for is not None and "lina.sh01" in lina.shown_for
