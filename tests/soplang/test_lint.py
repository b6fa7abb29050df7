"""`sopflow lint`: each bad file is reported on the right line, the shipped SOPs are clean."""

from __future__ import annotations

import datetime as dt
import io
import random
from pathlib import Path

import pytest

from core import clock
from core.settings import PROJECT_ROOT
from soplang.context import VARIABLES, available_variables, field_paths, reference_markdown
from soplang.lint import find_claims, lint_paths, main_lint
from tests.soplang.lines import line_of

ROOT = Path(__file__).resolve().parents[2]
SOP_DIR = ROOT / "sop"
BAD = ROOT / "tests" / "fixtures" / "sop_bad"
GOOD = (SOP_DIR / "community" / "morning-price.md").read_text(encoding="utf-8")

# One bad file per case DESIGN.md names: (file, line, message fragment).
BAD_CASES = [
    ("unknown-key.md", 9, "unknown key `timzone` under `schedule` (did you mean `timezone`?)"),
    ("bad-cron.md", 8, "`schedule.cron`: cron `30 25 * * *`: hour `25` is out of range 0-23"),
    ("bad-timezone.md", 9, "unknown timezone `Asia/Shanghia` (did you mean `Asia/Shanghai`?)"),
    ("bad-days.md", 10, "unknown days rule `weekdays` (did you mean `workdays`?)"),
    ("unknown-stage.md", 9, "unknown stage `sleeping`; use one of: new (引入期), growing (成长期)"),
    ("unknown-tier.md", 10, "unknown tier `diamond`; use one of: bronze (青铜), silver (白银)"),
    ("missing-section.md", 11, "step `burst` has no `## burst` section"),
    ("extra-section.md", 17, "section `## evening` matches no step"),
    ("jinja-syntax.md", 16, "template syntax error: unexpected '}'"),
    ("unknown-variable.md", 15, "variable `grop` is not available in step `main`"),
    ("unsafe-attribute.md", 16, "unsafe attribute `''.__class__`"),
    ("too-long.md", 14, "renders to 7600 bytes with the sample context; WeCom allows 4000 bytes"),
    ("absolute-claim.md", 16, "`全网最低` is an absolute claim"),
    ("not-utf8.md", 3, "the file is not UTF-8 text"),
    ("empty.md", 1, "the file is empty"),
    ("broken-yaml.md", 3, "front matter is not valid YAML: mapping values are not allowed here"),
]


def write(tmp_path: Path, text: str, name: str = "morning-price.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def lines(path: Path | list[Path]) -> list[str]:
    return [str(p) for p in lint_paths(path)]


@pytest.mark.parametrize(("name", "line", "message"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_each_bad_file_gets_exactly_one_error_on_its_line(
    name: str, line: int, message: str
) -> None:
    """Every bad fixture yields one `path:line: error:` line naming the problem."""
    path = BAD / name
    [problem] = lines(path)
    assert problem.startswith(f"{path}:{line}: error: ")
    assert message in problem


def test_second_file_with_a_used_id_names_the_first() -> None:
    first, second = BAD / "duplicate" / "a" / "same-id.md", BAD / "duplicate" / "b" / "same-id.md"
    assert lines(BAD / "duplicate") == [
        f"{second}:2: error: id `same-id` is already used by {first}:2; ids must be unique"
    ]


def test_unknown_variable_lists_what_is_available() -> None:
    [problem] = lines(BAD / "unknown-variable.md")
    assert problem.endswith(
        "(did you mean `group`?); available: deals, group, slot, sop, today, weekday"
    )


def test_shipped_sops_lint_clean() -> None:
    """No errors, and no warnings but the calendar's (2027 is not published: see test_calendar.py)."""
    out = io.StringIO()
    assert main_lint(SOP_DIR, out) == 0
    *found, total = out.getvalue().splitlines()
    others = [line for line in found if "no official holiday calendar is known" not in line]
    assert others == [] and total.endswith(f"0 error(s), {len(found)} warning(s)")


def test_main_lint_exit_code_and_sorted_output() -> None:
    out = io.StringIO()
    assert main_lint([BAD / "bad-days.md", BAD / "bad-cron.md"], out) == 1
    report = out.getvalue().splitlines()
    assert report[0].startswith(f"{BAD / 'bad-cron.md'}:8: error:")
    assert report[1].startswith(f"{BAD / 'bad-days.md'}:10: error:")
    assert report[2] == "2 file(s) checked: 2 error(s), 0 warning(s)"


def test_nested_attribute_typo_is_reported_on_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("{{ d.name }}", "{{ d.product.nme }}"))
    [problem] = lines(path)
    assert problem.startswith(
        f"{path}:{line_of(GOOD, '{{ d.name }}')}: error: `d.product.nme` does not exist "
        "(did you mean `name`?)"
    )


def test_step_context_differs_by_kind_channel_and_step() -> None:
    assert "stats" in available_variables("promotion", "customer", "recap")
    assert "stats" not in available_variables("promotion", "customer", "burst")
    assert "product" in available_variables("trigger", "customer", on="favourite.price_drop")
    assert "order" not in available_variables("trigger", "customer", on="favourite.price_drop")
    assert "group" in available_variables("community", "robot")


def test_absolute_claims_skip_everyday_words() -> None:
    assert list(find_claims("最近天气冷，最后3小时，第一次下单，第一时间通知您，最多省20元")) == []
    assert list(find_claims("全网最低价，销量第一名，100％纯果汁，国家级品质")) == [
        "全网最低",
        "第一",
        "100%",
        "国家级",
    ]


def test_allow_claims_permits_a_listed_word_and_flags_an_unused_one(tmp_path: Path) -> None:
    text = GOOD.replace("category: fresh", "category: fresh\nallow_claims: [最新, 极品]").replace(
        "早报价来啦！", "最新早报价来啦！"
    )
    [problem] = lines(write(tmp_path, text))
    assert ":7: warning: `allow_claims` lists `极品` but no step uses it" in problem


def test_claims_inside_template_expressions_are_not_flagged(tmp_path: Path) -> None:
    text = GOOD.replace("{{ group.name }}的", "{{ group.name or '最好' }}的")
    assert lines(write(tmp_path, text)) == []


def test_file_name_should_match_id(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, name="morning.md")
    assert lines(path) == [
        f"{path}:2: warning: the file name should match the id: rename the file to morning-price.md"
    ]


def test_robot_channel_has_a_smaller_limit(tmp_path: Path) -> None:
    body = "{% for i in range(60) %}今日特价散养土鸡蛋3.99元/斤{% endfor %}"
    text = (
        GOOD.replace("channel: group ", "channel: robot ").split("## main")[0]
        + f"## main\n{body}\n"
    )
    problems = lines(write(tmp_path, text))
    # A robot posts text only: the shipped file's image attachments are refused too.
    [problem] = [p for p in problems if "a group robot posts text only" not in p]
    assert (
        "renders to 2280 bytes with the sample context; WeCom allows 2048 bytes on channel robot"
        in problem
    )


def test_internal_ids_in_a_message_are_a_warning(tmp_path: Path) -> None:
    text = GOOD.replace("{{ group.owner.name }}", "{{ group.owner.userid }}")
    [problem] = lines(write(tmp_path, text))
    line = line_of(GOOD, "{{ group.owner.name }}")
    assert f":{line}: warning: `group.owner.userid` is an internal id" in problem


def test_workdays_rule_beyond_the_calendar_is_a_warning_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "local_today", lambda *args, **kwargs: dt.date(2031, 3, 2))
    path = write(tmp_path, GOOD.replace("days: everyday", "days: workdays"))
    [problem] = lines(path)
    assert problem.startswith(
        f"{path}:10: warning: `days: workdays` reaches 2031 today, and no official holiday "
        "calendar is known for 2031"
    )


def test_kind_rules_name_the_step_line(tmp_path: Path) -> None:
    text = """---
id: double12
title: 双12大促
kind: promotion
channel: customer
category: daily
audience: {customers: {tier: [gold]}}
steps:
  - {name: preview, at: "-1d 20:00"}
  - {name: recap, after: 2d}
---
## preview
明天{{ campaign.starts_at | time_cn }}，{{ campaign.name }}开抢，{{ items | length }}款爆品1折起，猜猜都有啥？
## recap
{{ stats.units_sold }}件已售出，{% for i in stats.sold_out %}{{ i.name }}{% endfor %}已售罄
"""
    path = write(tmp_path, text, "double12.md")
    assert lines(path) == [
        f"{path}:10: error: `after` does not apply to a promotion step (needs `at` relative to the "
        'campaign start, e.g. {name: burst, at: "0d 10:00"}); remove it',
        f"{path}:10: error: promotion step `recap` needs `at` relative to the campaign start, "
        'e.g. {name: burst, at: "0d 10:00"}',
    ]


def test_trigger_with_on_key_parses_as_text(tmp_path: Path) -> None:
    text = """---
id: price-drop
title: 收藏降价提醒
kind: trigger
channel: customer
category: baby
on: favourite.price_drop
---
## main
{{ customer.name }}您好，您收藏的{{ product.name }}降价啦，现在{{ product.price | yuan }}（原价{{ product.old_price | yuan }}）
"""
    assert lines(write(tmp_path, text, "price-drop.md")) == []


def test_a_trigger_sop_cannot_wait_for_approval(tmp_path: Path) -> None:
    text = """---
id: welcome
title: 新好友欢迎
kind: trigger
channel: customer
category: daily
on: contact.added
approval: {over: 100}
---
## main
{{ customer.name }}您好，欢迎加入！
"""
    path = write(tmp_path, text, "welcome.md")
    assert lines(path) == [
        f"{path}:8: error: trigger SOPs answer each event as it comes and cannot wait for "
        "approval; remove `approval`"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "---",
        "---\n---\n",
        "\ufeff---\n",
        "---\n\tid: x\n---\n",
        "---\n- a\n---\n## main\nx",
        "## main\n{{",
    ],
)
def test_odd_files_give_problems_not_tracebacks(tmp_path: Path, text: str) -> None:
    assert all(p.startswith(f"{tmp_path}") for p in lines(write(tmp_path, text)))


def test_random_bytes_and_mutations_never_raise(tmp_path: Path) -> None:
    """A little fuzzing: lint reports, it does not crash, whatever the bytes."""
    rng = random.Random(20261124)
    alphabet = list("{}[]:-#'\"*&!|>%\n\t ") + list(GOOD)
    for index in range(150):
        path = tmp_path / f"fuzz-{index}.md"
        if index % 3 == 0:
            path.write_bytes(rng.randbytes(rng.randint(0, 400)))
        else:
            chars = list(GOOD)
            for _ in range(rng.randint(1, 5)):
                chars.insert(rng.randrange(len(chars)), rng.choice(alphabet))
                del chars[rng.randrange(len(chars))]
            path.write_text("".join(chars), encoding="utf-8")
        assert isinstance(lint_paths(path), list)


def test_readme_variable_table_matches_the_context_module() -> None:
    readme = (SOP_DIR / "README.md").read_text(encoding="utf-8")
    assert reference_markdown() in readme
    for variable in VARIABLES:
        for path in field_paths(variable.name, variable.sample):
            assert f"`{path}`" in readme


def test_a_1to1_text_with_the_customers_name_warns_about_one_task_per_customer(tmp_path) -> None:
    source = PROJECT_ROOT / "tests" / "fixtures" / "sop_customer" / "dormant-care.md"
    text = source.read_text(encoding="utf-8").replace(
        "{{ customer.region }}的", "{{ customer.name }}，"
    )
    (tmp_path / "dormant-care.md").write_text(text, encoding="utf-8")

    problems = lint_paths(tmp_path)

    assert [(p.severity, p.line) for p in problems] == [("warning", 17)]
    assert "one WeCom task to confirm per customer" in problems[0].message


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ 'x' * 10**10 }}", "render limit: `'x' * 10000000000` would make a text of"),
        (
            "{% for i in range(9999) %}\n{% for j in range(9999) %}{% endfor %}\n{% endfor %}",
            "render limit: loops turn more than 10,000 times in one message",
        ),
        ("{{ range(10**10) | join }}", "render limit: `range` of 10,000,000,000 numbers"),
        (
            "{% macro f() %}{{ f() }}{{ f() }}{% endmacro %}\n{{ f() }}",
            "render limit: calls nest more than 50 deep",
        ),
        ("{{ '\\ud800' }}", "the escape for U+D800 (a lone surrogate) is not a character"),
    ],
)
def test_a_template_over_its_render_budget_is_an_error_on_its_line(
    tmp_path: Path, template: str, message: str
) -> None:
    """Lint renders the sample context under the same budget as a scheduled run, and says where."""
    path = write(
        tmp_path, GOOD.replace("{% for d in deals %}", template + "\n{% for d in deals %}")
    )
    [problem] = lines(path)
    line = line_of(GOOD, "{% for d in deals %}")  # where the template went in
    assert problem.startswith(f"{path}:{line}: error: {message}"), problem
