"""Lint of moments (朋友圈) SOPs: a staff audience, community kind, file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT
from soplang.context import available_variables
from soplang.lint import lint_file

HEAD = """---
id: moments-week
title: 周一朋友圈
kind: {kind}
channel: {channel}
category: fresh
schedule: {{cron: "30 9 * * 1"}}
audience:
{audience}
---
## main
本周当季好物：火锅食材搭配清单，私信我领取～
"""


def errors_of(tmp_path: Path, **fields: str) -> list[str]:
    values = {"kind": "community", "channel": "moments", "audience": "  staff: {role: [advisor]}"}
    path = tmp_path / "moments-week.md"
    path.write_text(HEAD.format(**{**values, **fields}), encoding="utf-8")
    return [str(p) for p in lint_file(path).errors]


@pytest.mark.parametrize("path", sorted((PROJECT_ROOT / "sop" / "moments").glob("*.md")))
def test_the_shipped_weekly_moments_plan_lints_clean(path: Path) -> None:
    assert [str(p) for p in lint_file(path).errors] == []


def test_a_staff_audience_by_store_region_and_role_lints_clean(tmp_path: Path) -> None:
    audience = "  staff: {store: [S-0, 北京旗舰店], region: 北京, role: [advisor]}"
    assert errors_of(tmp_path, audience=audience) == []
    assert available_variables("community", "moments") == ["sop", "today", "weekday"]


def test_moments_without_a_staff_audience_name_the_audience_line(tmp_path: Path) -> None:
    (error,) = errors_of(tmp_path, audience="  groups: {theme: [生鲜]}")[:1]
    assert "moments-week.md:8:" in error and "needs `audience.staff`" in error
    assert any(
        "remove `audience.groups`" in e
        for e in errors_of(tmp_path, audience="  groups: {theme: [生鲜]}")
    )


def test_a_staff_audience_on_a_group_sop_is_refused_with_its_line(tmp_path: Path) -> None:
    audience = "  groups: {theme: [生鲜]}\n  staff: {role: [advisor]}"
    (error,) = errors_of(tmp_path, channel="group", audience=audience)
    assert "moments-week.md:10:" in error and "`audience.staff` is for `channel: moments`" in error


def test_an_unknown_staff_field_is_refused_with_its_line(tmp_path: Path) -> None:
    (error,) = errors_of(tmp_path, audience="  staff: {city: [北京]}")
    assert "moments-week.md:9:" in error and "city" in error


def test_moments_need_the_community_kind(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, kind="promotion")
    assert any("use `kind: community`" in e for e in errors)


def test_a_moment_with_two_links_is_refused_on_its_line(tmp_path: Path) -> None:
    audience = (
        "  staff: {role: [advisor]}\nsteps:\n  - name: main\n    attachments:\n"
        '      - link: {title: 周末食谱, url: "https://shop.example.com/recipe"}\n'
        '      - link: {title: 会员日, url: "https://shop.example.com/member"}'
    )
    errors = errors_of(tmp_path, audience=audience)
    assert any(
        "moments-week.md:12:" in e and "one video, or one link, not link, link" in e for e in errors
    ), errors
