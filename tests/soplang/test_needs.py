"""`needs:` on community steps: the default from the text, the declared value, and lint's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import SopDefinitionError
from core.settings import PROJECT_ROOT
from soplang.lint import lint_file
from soplang.loader import load_sop, load_sops
from soplang.needs import needs_deals

HEAD = """---
id: lunch-vote
title: 投票选品
kind: community
channel: group
category: fresh
schedule:
  cron: "0 12 * * *"
audience:
  groups: {theme: [生鲜]}
"""
VOTE = "下周上架哪种进口水果？你来决定：A 车厘子 B 榴莲\n"
DEALS = "{% for d in deals %}\n· {{ d.name }}\n{% endfor %}\n"


def write(tmp_path: Path, steps: str, text: str) -> Path:
    path = tmp_path / "lunch-vote.md"
    path.write_text(f"{HEAD}{steps}---\n## main\n{text}", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("steps", "text", "needs"),
    [
        ("", VOTE, False),  # no `needs`: a text without deals sends every day
        ("", VOTE + DEALS, True),  # no `needs`: a text listing deals waits for them
        ("steps:\n  - {name: main, needs: nothing}\n", VOTE, False),
        ("steps:\n  - {name: main, needs: deals}\n", VOTE, True),  # declared: skip dealless groups
    ],
)
def test_a_step_needs_deals_when_it_says_so_or_else_when_its_text_uses_them(
    tmp_path: Path, steps: str, text: str, needs: bool
) -> None:
    assert needs_deals(load_sop(write(tmp_path, steps, text)), "main") is needs


def test_the_shipped_deal_sops_need_deals_and_the_topic_and_quiz_do_not() -> None:
    specs = {spec.id: spec for spec in load_sops(PROJECT_ROOT / "sop" / "community")}

    needs = {sop_id: needs_deals(specs[sop_id], "main") for sop_id in specs}

    assert {sop_id for sop_id, need in needs.items() if need} == {
        "morning-price",
        "evening-flash-sale",
    }
    assert needs["noon-topic"] is False and needs["weekend-quiz"] is False
    assert specs["noon-topic"].priority == specs["weekend-quiz"].priority == "low"


def test_lint_refuses_deals_in_the_text_of_a_step_that_needs_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "steps:\n  - {name: main, needs: nothing}\n", VOTE + DEALS)

    errors = [str(p) for p in lint_file(path).errors]

    assert errors == [
        f"{path}:16: error: step `main` says `needs: nothing` (line 12) but its text uses `deals`, "
        "which such a step does not get: take the deals out of the text, or write `needs: deals` "
        "(groups with no deals that day are then skipped)"
    ]
    with pytest.raises(SopDefinitionError):
        load_sop(path)


def test_lint_names_a_misspelt_needs_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "steps:\n  - {name: main, needs: deal}\n", VOTE)

    errors = [str(p) for p in lint_file(path).errors]

    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:12: error: ")
    assert "unknown needs `deal` (did you mean `deals`?); use one of: deals, nothing" in errors[0]


def test_lint_refuses_needs_outside_community_steps(tmp_path: Path) -> None:
    path = tmp_path / "dormant-care.md"
    path.write_text(
        "---\nid: dormant-care\ntitle: 休眠关怀\nkind: lifecycle\nchannel: customer\n"
        "category: fresh\naudience:\n  customers: {stage: [dormant]}\nsteps:\n"
        '  - {name: care, after: 3d, send_at: "10:00", needs: nothing}\n'
        "---\n## care\n{{ customer.name }}您好，好久不见～\n",
        encoding="utf-8",
    )

    errors = [str(p) for p in lint_file(path).errors]

    assert errors == [
        f"{path}:10: error: `needs` only applies to community steps (whether a step waits for "
        "the day's deals); remove it from lifecycle step `care`"
    ]
