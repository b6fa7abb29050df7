"""Community steps that need no deals (topic, quiz) go to every group; deals steps still wait for deals."""

from __future__ import annotations

import datetime as dt

import pytest

from core.clock import at_local
from core.settings import PROJECT_ROOT
from engine.preview import PreviewRequest, preview_sop
from flows.community import community_sop
from soplang.loader import load_sop
from tests.factories import deliveries, make_world

DEALS_DAY = dt.date(2026, 11, 24)  # a Tuesday: the world's deals are loaded for this day only
NO_DEALS = dt.date(2026, 11, 25)  # a Wednesday without a single deal
SATURDAY = dt.date(2026, 11, 28)
LIVE = ["北京生鲜爱好者群", "北京生鲜二群", "上海母婴用品群", "上海酒水品鉴群"]
NO_MORNING_DEALS = "no morning deals today for this group's theme"


@pytest.fixture
def world(database_url: str):
    return make_world(DEALS_DAY, database_url)


def by_sop(sop_id: str) -> dict[str, tuple[str, str | None]]:
    return {r.target_id: (r.status, r.reason) for r in deliveries() if r.sop_id == sop_id}


def test_a_content_only_step_sends_to_every_group_on_a_day_without_deals(world) -> None:
    summaries = community_sop(sop_id="noon-topic", day=NO_DEALS, now=at_local(NO_DEALS, 12))

    assert by_sop("noon-topic") == {world.chat_ids[name]: ("sent", None) for name in LIVE}
    assert summaries[0]["this_run"] == {"sent": 4}


def test_a_deals_step_on_the_same_day_still_skips_every_group_with_the_reason(world) -> None:
    community_sop(sop_id="morning-price", day=NO_DEALS, now=at_local(NO_DEALS, 8, 30))
    community_sop(sop_id="noon-topic", day=NO_DEALS, now=at_local(NO_DEALS, 12))

    assert by_sop("morning-price") == {
        world.chat_ids[name]: ("skipped", NO_MORNING_DEALS) for name in LIVE
    }
    assert {status for status, _ in by_sop("noon-topic").values()} == {"sent"}


def test_a_needs_nothing_step_also_reaches_the_group_whose_theme_has_no_deals(
    database_url: str,
) -> None:
    world = make_world(SATURDAY, database_url)  # deals today, but none for 酒水

    community_sop(sop_id="weekend-quiz", day=SATURDAY, now=at_local(SATURDAY, 15))

    assert set(by_sop("weekend-quiz")) == {world.chat_ids[name] for name in LIVE}
    assert {status for status, _ in by_sop("weekend-quiz").values()} == {"sent"}


@pytest.mark.parametrize(
    ("sop_id", "day", "says"),
    [("noon-topic", NO_DEALS, "冰箱囤货清单"), ("weekend-quiz", SATURDAY, "周末趣味问答")],
)
def test_the_shipped_content_only_sops_preview_a_text_without_deals(
    world, sop_id: str, day: dt.date, says: str
) -> None:
    spec = load_sop(sop_id, PROJECT_ROOT / "sop")

    preview = preview_sop(spec, PreviewRequest(day=day))

    assert preview.text is not None and says in preview.text and "北京生鲜爱好者群" in preview.text
    assert preview.nothing is None
    assert preview.audience.startswith("4 groups")
    assert any("not needed by this step" in line for line in preview.when)
    assert "runs" in preview.when[0] and "NOT" not in preview.when[0]
