"""sop/tiers.yaml and sop/tags.yaml: the shipped files are clean, and every mistake is reported
by `sopflow lint` on its line with what to write instead."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from core.errors import SopDefinitionError
from core.settings import PROJECT_ROOT
from demo.customers import TIER_THRESHOLDS
from soplang.derive_files import load_tiers, read_tiers
from soplang.lint import main_lint
from soplang.tag_rules import TagRule, load_tag_rules, read_tag_rules

SOP = PROJECT_ROOT / "sop"


def _lines(problems) -> list[tuple[int, str]]:
    return [(p.line, p.message) for p in problems]


def test_shipped_tiers_match_the_demo_world_thresholds() -> None:
    """sop/tiers.yaml sets the floors the demo world's tiers were drawn with."""
    floors = load_tiers(SOP)

    assert floors is not None
    assert dict(floors.floors) == {name: fen for fen, name in TIER_THRESHOLDS}


def test_shipped_tag_rules_read_as_written() -> None:
    """The shipped rules, condition by condition."""
    rules = {r.name: r for r in load_tag_rules(SOP)}

    assert rules["宝妈"] == TagRule(
        "宝妈", rules["宝妈"].line, category="baby", days=90, min_orders=2
    )
    assert rules["高客单"].min_average_fen == 20_000 and rules["高客单"].days == 180
    assert rules["沉睡30天"].no_order_days == 30 and not rules["沉睡30天"].counts_orders


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (
            "silver: 300\ngold: 1000\nplatinum: 300\n",
            3,
            "platinum's floor (300 元) must be above gold's",
        ),
        ("silver: 300\ngold: 10.005\nplatinum: 3000\n", 2, "at most 2 decimals"),
        ("silver: 300\nglod: 1000\nplatinum: 3000\n", 2, "did you mean `gold`"),
        ("bronze: 5\nsilver: 300\ngold: 1000\nplatinum: 3000\n", 1, "must be 0"),
        ("silver: 300\nsilver: 400\n", 2, "written twice (first on line 1)"),
        ("silver: 300\n  gold: 1\n", 2, "not valid YAML"),
        ("- silver\n", 1, "write one `gold: 1000` per line"),
    ],
)
def test_bad_tiers_are_reported_on_their_line(tmp_path, text, line, words) -> None:
    path = tmp_path / "tiers.yaml"
    path.write_text(text, encoding="utf-8")

    floors, problems = read_tiers(path)

    assert floors is None
    assert any(n == line and words in m for n, m in _lines(problems)), _lines(problems)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("宝妈:\n  category: 母婴\n  min_order: 2\n", 3, "did you mean `min_orders`"),
        ("宝妈:\n  category: 玩具\n  min_orders: 2\n", 2, "category `玩具` is not one of"),
        ("宝妈:\n  days: 90\n", 2, "narrows the orders"),
        ("宝妈:\n  min_orders: two\n", 2, "whole number from 1 to 100000"),
        ("高客单:\n  min_average: -5\n", 2, "amount in yuan"),
        ("高客单:\n  min_spend: 500\n  max_spend: 100\n", 3, "below min_spend"),
        ("宝妈:\n  gender: 女\n宝妈:\n  gender: 男\n", 3, "written twice (first on line 1)"),
        ("宝妈: 2\n", 1, "give `宝妈` its conditions"),
        ("空:\n  group: 智能标签\n", 1, "has no condition"),
        ("常客:\n  tiers: [gold, diamond]\n", 2, "tiers lists"),
        ("a: &a [*a]\n", 1, "refers to the value it is inside of"),
    ],
)
def test_bad_tag_rules_are_reported_on_their_line(tmp_path, text, line, words) -> None:
    path = tmp_path / "tags.yaml"
    path.write_text(text, encoding="utf-8")

    rules, problems = read_tag_rules(path)

    assert any(n == line and words in m for n, m in _lines(problems)), _lines(problems)
    assert len(problems) == 1


def test_hostile_files_get_one_clear_error(tmp_path) -> None:
    """A billion-laughs file, a binary file and a huge file each give one error, nothing more."""
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    cases = {
        "laughs": laughs.encode(),
        "binary": b"\x89PNG\r\n\x1a\n\x00\x00",
        "huge": b"x: " + b"1" * (300 * 1024),
    }
    for name, data in cases.items():
        path = tmp_path / name / "tags.yaml"
        path.parent.mkdir()
        path.write_bytes(data)
        _, problems = read_tag_rules(path)
        assert len(problems) == 1, (name, problems)


def test_sopflow_lint_reports_both_files_with_path_and_line(tmp_path) -> None:
    """`sopflow lint` on a folder checks its tiers.yaml and tags.yaml like its SOPs."""
    shutil.copy(SOP / "community" / "morning-price.md", tmp_path / "morning-price.md")
    (tmp_path / "tiers.yaml").write_text("silver: 300\ngold: 100\nplatinum: 3000\n", "utf-8")
    (tmp_path / "tags.yaml").write_text("宝妈:\n  categroy: 母婴\n", "utf-8")
    out = io.StringIO()

    code = main_lint(tmp_path, out)

    report = out.getvalue()
    assert code == 1
    assert f"{tmp_path / 'tiers.yaml'}:2: error: gold's floor" in report
    assert f"{tmp_path / 'tags.yaml'}:2: error: unknown condition `categroy`" in report


def test_loading_a_broken_file_raises_naming_each_line(tmp_path: Path) -> None:
    (tmp_path / "tags.yaml").write_text("宝妈:\n  min_orders: 0\n", "utf-8")

    with pytest.raises(SopDefinitionError, match=r"tags.yaml:2: error: min_orders"):
        load_tag_rules(tmp_path)


def test_shipped_folder_lints_clean() -> None:
    """The shipped sop/tiers.yaml and sop/tags.yaml have no problem at all."""
    assert read_tiers(SOP / "tiers.yaml")[1] + read_tag_rules(SOP / "tags.yaml")[1] == []
