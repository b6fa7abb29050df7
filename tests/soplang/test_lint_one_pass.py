"""Lint in one pass: front matter and templates together, every unknown variable and field on its line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from core.errors import SopDefinitionError
from soplang.lint import lint_paths, main_lint
from soplang.loader import load_sop
from tests.soplang.lines import line_of

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "sop" / "community" / "morning-price.md").read_text(encoding="utf-8")

# One front-matter mistake (line 9) and a template mistake in each of two steps (lines 18, 20).
TWO_STEPS = """---
id: day-deals
title: 早晚报价
kind: community
channel: group
category: fresh
schedule:
  cron: "30 8 * * *"
  days: weekdays
audience:
  groups: {theme: [生鲜]}
steps:
  - {name: morning}
  - {name: evening}
---
## morning
{{ group.name }}的家人们早上好☀️
{% for d in dealz %}· {{ d.name }} {{ d.price | yuan }}{% endfor %}
## evening
晚安心选来啦，有问题随时找群主{{ group.ownr.name }}
"""

PROMOTION = """---
id: double12
title: 双12大促
kind: promotion
channel: customer
category: daily
audience: {customers: {tier: [gold]}}
steps:
  - {name: preview, at: "-1d 20:00"}
---
## preview
明天{{ campaign.starts_at | time_cn }}，{{ campaign.name }}开抢，{{ TEXT }}款爆品1折起，猜猜都有啥？
"""


def write(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def lines(path: Path) -> list[str]:
    return [str(p) for p in lint_paths(path)]


def test_one_front_matter_and_two_template_mistakes_are_all_reported_with_their_lines(
    tmp_path: Path,
) -> None:
    """The acceptance case of issue #15: three `path:line: error:` lines from one run."""
    path = write(tmp_path, TWO_STEPS, "day-deals.md")
    out = io.StringIO()

    assert main_lint(path, out) == 1

    report = out.getvalue().splitlines()
    assert report == [
        f"{path}:9: error: `schedule.days`: unknown days rule `weekdays` (did you mean "
        "`workdays`?); use one of: everyday, workdays, weekends",
        f"{path}:18: error: variable `dealz` is not available in step `morning` of a community "
        "SOP on channel group (did you mean `deals`?); available: deals, group, slot, sop, "
        "today, weekday",
        f"{path}:20: error: `group.ownr` does not exist (did you mean `owner`?); `group` has: "
        "name, chat_id, region, theme, member_count, owner",
        "1 file(s) checked: 3 error(s), 0 warning(s)",
    ]


def test_loading_refuses_the_same_three_errors_lint_prints(tmp_path: Path) -> None:
    path = write(tmp_path, TWO_STEPS, "day-deals.md")

    with pytest.raises(SopDefinitionError) as caught:
        load_sop(path)

    assert caught.value.problems == lines(path)
    assert [p.split(":")[1] for p in caught.value.problems] == ["9", "18", "20"]


def test_campaign_items_is_a_missing_field_that_points_at_the_items_variable(
    tmp_path: Path,
) -> None:
    """`campaign.items` once reached dict.items and crashed with a TypeError from `length`."""
    path = write(tmp_path, PROMOTION.replace("TEXT", "campaign.items | length"), "double12.md")

    [problem] = lines(path)

    assert problem.startswith(
        f"{path}:12: error: `campaign` has no field `items`; did you mean `items`? It is a "
        "variable of its own (the campaign's items with competitor prices)"
    )
    assert problem.endswith("`campaign` has: code, name, starts_at, ends_at")
    assert "TypeError" not in problem


def test_every_unknown_field_in_one_step_is_reported_on_its_own_line(tmp_path: Path) -> None:
    text = PROMOTION.replace("TEXT", "items | length") + (
        "{% for i in items %}\n· {{ i.nme }}\n比{{ i.competitor_nam }}便宜{{ i.saving | yuan }}\n"
        "{% endfor %}\n{{ items | map(attribute='prise') | join(',') }}\n"
    )
    path = write(tmp_path, text, "double12.md")

    problems = lint_paths(path)

    assert [(p.severity, p.line) for p in problems] == [("error", 14), ("error", 15), ("error", 17)]
    assert problems[0].message.startswith("`i.nme` does not exist (did you mean `name`?); `i` has:")
    assert "(did you mean `competitor_name`?)" in problems[1].message
    assert problems[2].message.startswith(
        "`items | map(attribute='prise')`: the elements of `items` have no field `prise` "
        "(did you mean `price`?)"
    )


def test_a_variable_used_on_two_lines_is_reported_on_both(tmp_path: Path) -> None:
    text = GOOD.replace("{{ group.name }}", "{{ grop.name }}").replace(
        "{{ group.owner.name }}", "{{ grop.owner.name }}"
    )
    path = write(tmp_path, text, "morning-price.md")

    first, last = line_of(GOOD, "{{ group.name }}"), line_of(GOOD, "{{ group.owner.name }}")
    assert [p.split(": error: ")[0] for p in lines(path)] == [f"{path}:{first}", f"{path}:{last}"]


def test_fields_read_only_to_test_or_default_them_are_not_errors(tmp_path: Path) -> None:
    """`x.nope is defined` and `x.nope | default(…)` render fine, so lint accepts them."""
    text = GOOD.replace(
        "{{ group.name }}",
        "{% if group.nickname is defined %}亲爱的{% endif %}"
        "{{ group.alias | default(group.name) }}",
    )
    assert lines(write(tmp_path, text, "morning-price.md")) == []


def test_a_broken_kind_checks_the_templates_against_every_kind(tmp_path: Path) -> None:
    """Without a valid kind, a variable some kind offers on the channel passes; a typo does not."""
    text = GOOD.replace("kind: community", "kind: comunity").replace(
        "{{ weekday }}", "{{ weekdya }}"
    )
    path = write(tmp_path, text, "morning-price.md")

    problems = lint_paths(path)

    assert [(p.line, p.message.split(";")[0]) for p in problems] == [
        (4, "`kind`: unknown kind `comunity` (did you mean `community`?)"),
        (
            line_of(GOOD, "{{ weekday }}"),
            "variable `weekdya` is not available in step `main` of any SOP on channel group "
            "(did you mean `weekday`?)",
        ),
    ]
    available = problems[1].message.split("available: ")[1].split(", ")
    assert {"campaign", "deals", "event", "group", "weekday"} <= set(available)
    assert len(available) == len(set(available))  # `group` of two kinds is one variable


def test_front_matter_that_is_not_yaml_is_one_clear_error(tmp_path: Path) -> None:
    text = GOOD.replace("title: 早报价 · 每日特价早报", 'title: "早报价\n  cron: [30 8')
    path = write(tmp_path, text, "morning-price.md")

    [problem] = lines(path)

    assert problem.startswith(f"{path}:") and ": error: front matter is not valid YAML" in problem
    assert "could not finish" not in problem


def test_templates_are_still_checked_when_the_yaml_does_not_parse(tmp_path: Path) -> None:
    """The kind and channel lines that can still be read decide what the template may use."""
    text = GOOD.replace("title: 早报价 · 每日特价早报", "title: 早报价: 每日特价").replace(
        "{{ d.name }}", "{{ d.nme }}"
    )
    path = write(tmp_path, text, "morning-price.md")

    problems = lint_paths(path)

    assert [(p.line, p.message.split(":")[0]) for p in problems] == [
        (3, "front matter is not valid YAML"),
        (line_of(GOOD, "{{ d.name }}"), "`d.nme` does not exist (did you mean `name`?); `d` has"),
    ]
