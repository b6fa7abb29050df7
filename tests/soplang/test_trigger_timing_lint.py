"""Lint of trigger step timing: `after` in hours or days, `send_at`, `unless` and `robot`, each in its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from soplang.lint import lint_paths

TRIGGER = """---
id: waits
title: 等待
kind: trigger
on: complaint.opened
channel: customer
category: daily
steps:
  - {STEP}
---
## one
单号{{{{ complaint.id }}}}
"""
LIFECYCLE = """---
id: waits
title: 等待
kind: lifecycle
channel: customer
category: daily
schedule: {{cron: "0 10 * * *"}}
audience: {{customers: {{stage: [new]}}}}
steps:
  - {STEP}
---
## one
你好
"""


def lint(tmp_path: Path, template: str, step: str) -> list[str]:
    path = tmp_path / "waits.md"
    path.write_text(template.format(STEP=step), encoding="utf-8")
    return [p.message for p in lint_paths(path) if p.severity == "error"]


@pytest.mark.parametrize(
    "step",
    [
        "{name: one}",
        "{name: one, after: 1h}",
        "{name: one, after: 3d}",
        '{name: one, after: 2d, send_at: "10:00"}',
        '{name: one, send_at: "10:00"}',
        "{name: one, after: 1h, unless: [complaint.updated, complaint.closed], robot: ops}",
    ],
)
def test_trigger_steps_may_wait(tmp_path: Path, step: str) -> None:
    assert lint(tmp_path, TRIGGER, step) == []


@pytest.mark.parametrize(
    ("template", "step", "message"),
    [
        (TRIGGER, "{name: one, after: 2w}", '"1h" (hours)'),
        (TRIGGER, '{name: one, after: 1h, send_at: "10:00"}', "`send_at` goes with days"),
        (TRIGGER, "{name: one, unless: complaint.closed}", "`unless` needs a wait"),
        (
            TRIGGER,
            "{name: one, after: 1h, unless: complaint.clsed}",
            "did you mean `complaint.closed`",
        ),
        (LIFECYCLE, '{name: one, after: 3h, send_at: "10:00"}', "hours are for trigger steps"),
        (LIFECYCLE, '{name: one, after: 3d, send_at: "10:00", robot: ops}', "only for trigger"),
    ],
)
def test_misplaced_timing_is_refused_with_what_to_write(
    tmp_path: Path, template: str, step: str, message: str
) -> None:
    errors = lint(tmp_path, template, step)
    assert any(message in e for e in errors), errors
