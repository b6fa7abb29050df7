"""`issue:` (coupons) in SOP files: refused with file:line where no coupon can go, and the text
must show `coupon.code`; the shipped coupon SOPs lint clean and render the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT
from soplang.context import step_context
from soplang.lint import lint_file
from soplang.loader import load_sop
from soplang.template import compile_step, render

HEAD = """---
id: {id}
title: 券
kind: {kind}
{extra}channel: {channel}
category: daily
steps:
  - {step}
---
"""


def lint(tmp_path: Path, body: str, *, step: str, kind: str = "trigger", channel: str = "customer"):
    extra = "on: contact.added\n" if kind == "trigger" else 'schedule: {cron: "0 10 * * *"}\n'
    text = HEAD.format(id="coupon", kind=kind, extra=extra, channel=channel, step=step) + body
    path = tmp_path / "coupon.md"
    path.write_text(text, encoding="utf-8")
    return [(p.line, p.message) for p in lint_file(path).problems if p.is_error]


GOOD = "## main\n券码{{ coupon.code }}，{{ coupon.expires }}前有效\n"


def test_a_trigger_step_issuing_a_coupon_it_shows_is_clean(tmp_path: Path) -> None:
    assert lint(tmp_path, GOOD, step="{name: main, issue: {coupon: WELCOME-10}}") == []


@pytest.mark.parametrize(
    ("step", "found"),
    [
        ("{name: main, issue: {coupon: WELCOME-10, value: 10}}", "value"),
        ('{name: main, issue: {coupon: ""}}', "must not be empty"),
        ("{name: main, issue: {coupon: 首单券}}", "is not a coupon code"),
        ("{name: main, issue: {}}", "coupon"),
    ],
)
def test_a_bad_issue_is_refused_on_its_line(tmp_path: Path, step: str, found: str) -> None:
    problems = lint(tmp_path, GOOD, step=step)
    assert any(line == 9 and found in message for line, message in problems), problems


def test_a_text_that_does_not_show_the_code_is_refused(tmp_path: Path) -> None:
    body = "## main\n送您一张券，{{ coupon.expires }}前有效\n"
    problems = lint(tmp_path, body, step="{name: main, issue: {coupon: WELCOME-10}}")
    assert [(line, "never shows the code" in m) for line, m in problems] == [(11, True)]


def test_reading_coupon_without_issue_is_refused_on_its_line(tmp_path: Path) -> None:
    problems = lint(tmp_path, "## main\n你好\n券码{{ coupon.code }}\n", step="{name: main}")
    assert [(line, "issues none" in m) for line, m in problems] == [(13, True)]


def test_a_group_sop_cannot_issue(tmp_path: Path) -> None:
    body = "## main\n券码{{ coupon.code }}\n"
    problems = lint(
        tmp_path,
        body,
        step="{name: main, issue: {coupon: GROUP-5}}",
        kind="community",
        channel="group",
    )
    assert any(line == 9 and "only on 1:1 trigger steps" in m for line, m in problems), problems


def test_a_robot_step_cannot_issue(tmp_path: Path) -> None:
    step = "{name: main, robot: ops, issue: {coupon: SORRY-10}}"
    problems = lint(tmp_path, GOOD, step=step)
    assert any(line == 9 and "posts to the robot" in m for line, m in problems), problems


@pytest.mark.parametrize(
    ("file", "step", "coupon"),
    [
        ("welcome.md", "main", "WELCOME-10"),
        ("birthday.md", "greeting", "BIRTHDAY-20"),
        ("complaint-sla.md", "progress", "SORRY-10"),
    ],
)
def test_shipped_coupon_steps_issue_and_show_the_code(file: str, step: str, coupon: str) -> None:
    path = PROJECT_ROOT / "sop" / "triggers" / file
    spec = load_sop(path)
    assert spec.step(step).issue.coupon == coupon
    assert not [p for p in lint_file(path).problems if p.is_error]
    context = step_context(spec, step)
    assert context["coupon"]["code"] in render(compile_step(spec, step), context)
