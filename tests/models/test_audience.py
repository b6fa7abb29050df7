"""Group audiences compile to bound-parameter queries over the tables."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from models.audience import count_groups, first_group, group_id_ranges, groups_in_range
from models.db import session_scope
from tests.factories import make_world


def audience(*, theme=(), region=(), owner=()) -> SimpleNamespace:
    """A `groups:` audience without the SOP language's validation (which refuses unknown themes)."""
    return SimpleNamespace(theme=theme, region=region, owner=owner)


def names(groups_filter, batch_size: int = 1000) -> list[str]:
    with session_scope() as session:
        ranges = group_id_ranges(groups_filter, batch_size=batch_size, session=session)
        return [g.name for r in ranges for g in groups_in_range(groups_filter, r, session=session)]


def test_theme_and_region_filters_select_live_groups_only(database_url: str) -> None:
    make_world(dt.date(2026, 11, 24), database_url)

    assert names(audience(theme=["生鲜", "家电"])) == ["北京生鲜爱好者群", "北京生鲜二群"]
    assert names(audience(region=["上海"])) == ["上海母婴用品群", "上海酒水品鉴群"]
    assert names(audience(theme=["生鲜"], region=["上海"])) == []


def test_batches_cover_every_group_exactly_once(database_url: str) -> None:
    make_world(dt.date(2026, 11, 24), database_url)

    assert names(audience(), batch_size=1) == names(audience(), batch_size=1000)
    with session_scope() as session:
        assert len(group_id_ranges(audience(), batch_size=3, session=session)) == 2
        assert count_groups(audience(), session=session) == 4


def test_a_hostile_value_is_just_a_value_that_matches_nothing(database_url: str) -> None:
    make_world(dt.date(2026, 11, 24), database_url)

    assert names(audience(theme=["生鲜') OR 1=1; DROP TABLE customer_group;--"])) == []
    assert len(names(audience())) == 4


def test_preview_group_is_the_first_match_or_the_chat_id_asked_for(database_url: str) -> None:
    world = make_world(dt.date(2026, 11, 24), database_url)

    with session_scope() as session:
        assert first_group(audience(region=["上海"]), session=session).name == "上海母婴用品群"
        wanted = world.chat_ids["上海酒水品鉴群"]
        found = first_group(audience(), session=session, chat_id=wanted)
        assert (found.chat_id, found.owner_userid) == (wanted, "lina.sh01")
        assert first_group(audience(theme=["生鲜"]), session=session, chat_id=wanted) is None
