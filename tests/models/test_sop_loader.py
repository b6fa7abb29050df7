"""Loading SOP files into SopSpec: line numbers, sections, implicit steps, clear failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.sop_loader import find_sop, load_sop, load_sops
from models.sop_spec import SopSpec
from sopflow.errors import SopDefinitionError

ROOT = Path(__file__).resolve().parents[2]
SOP_DIR = ROOT / "sop"
BAD = ROOT / "tests" / "fixtures" / "sop_bad"

LIFECYCLE = """---
id: dormant-wakeup
title: 休眠唤醒
kind: lifecycle
channel: customer
category: fresh
priority: high
schedule: {cron: "0 10 * * *", days: workdays}
audience:
  customers:
    stage: dormant
    tier: [gold, platinum]
    tags_none: [投诉中]
    last_purchase_days: {gte: 30, lte: 90}
    holdout: 0.1
approval: {over: 20000}
attribution: {window: 72h}
steps:
  - {name: care, after: 0d, send_at: "10:00"}
  - name: coupon
    after: 3d
    send_at: 10:30
---
## care
{{ customer.name }}您好，好久不见，最近还好吗？

## coupon
{{ customer.name }}，送您一张限时大额券，7天内有效～
"""


def test_shipped_sops_load_with_their_steps_and_sections() -> None:
    specs = {spec.id: spec for spec in load_sops(SOP_DIR)}
    assert {"morning-price", "evening-flash-sale"} <= set(specs)
    morning = specs["morning-price"]
    assert morning.step_names == ["main"]
    assert morning.schedule is not None and morning.schedule.cron == "30 8 * * *"
    assert morning.audience is not None and morning.audience.groups is not None
    assert morning.audience.groups.theme == ["生鲜", "母婴", "零食", "酒水", "家电", "日用"]
    assert morning.section("main").first_line == 15
    assert morning.path == SOP_DIR / "community" / "morning-price.md"


def test_every_key_knows_its_line(tmp_path: Path) -> None:
    path = tmp_path / "dormant-wakeup.md"
    path.write_text(LIFECYCLE, encoding="utf-8")
    spec = load_sop(path)
    assert spec.line_of("schedule", "cron") == 8
    assert spec.line_of("audience", "customers", "holdout") == 15
    assert spec.line_of("steps", 1, "send_at") == 22
    assert spec.line_of("no", "such") == 1
    assert spec.section("coupon").first_line == 28


def test_lifecycle_fields_are_parsed_with_friendly_scalars(tmp_path: Path) -> None:
    path = tmp_path / "dormant-wakeup.md"
    path.write_text(LIFECYCLE, encoding="utf-8")
    spec = load_sop(path)
    assert spec.audience is not None and spec.audience.customers is not None
    assert spec.audience.customers.stage == ["dormant"]  # a single value becomes a list
    assert spec.step("coupon").send_at == "10:30"  # not YAML 1.1's sexagesimal 630
    assert spec.step("coupon").after_days == 3
    assert spec.step("coupon").send_time == (10, 30)
    assert spec.priority == "high" and spec.approval is not None and spec.approval.over == 20000


def test_no_steps_means_one_implicit_main_step() -> None:
    spec = load_sop(SOP_DIR / "community" / "evening-flash-sale.md")
    assert spec.steps is None
    assert spec.step_names == ["main"]
    assert spec.step("main").at is None


def test_promotion_at_offsets() -> None:
    spec = SopSpec.model_validate(
        {
            "id": "double12",
            "title": "双12",
            "kind": "promotion",
            "channel": "customer",
            "category": "daily",
            "steps": [{"name": "preview", "at": "-1d 20:00"}, {"name": "burst", "at": "0d 10:00"}],
        }
    )
    assert [s.at_offset for s in spec.step_list] == [(-1, 20, 0), (0, 10, 0)]


def test_bad_file_raises_with_problem_lines() -> None:
    with pytest.raises(SopDefinitionError) as caught:
        load_sop(BAD / "bad-cron.md")
    assert caught.value.problems == [
        f"{BAD / 'bad-cron.md'}:8: error: `schedule.cron`: cron `30 25 * * *`: hour `25` is out of range 0-23"
    ]


def test_missing_required_keys_point_at_the_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    path.write_text("---\nid: x\nkind: community\n---\n## main\nhi\n", encoding="utf-8")
    with pytest.raises(SopDefinitionError) as caught:
        load_sop(path)
    assert f"{path}:1: error: missing required key `title`" in caught.value.problems


def test_load_sops_reports_duplicate_ids() -> None:
    with pytest.raises(SopDefinitionError) as caught:
        load_sops(BAD / "duplicate")
    [problem] = caught.value.problems
    assert "id `same-id` is already used by" in problem


def test_find_sop_by_id_and_did_you_mean() -> None:
    assert find_sop("morning-price", SOP_DIR).title.startswith("早报价")
    with pytest.raises(SopDefinitionError, match="did you mean `morning-price`"):
        find_sop("morning-prize", SOP_DIR)


def test_front_matter_cannot_set_loader_fields(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    text = (SOP_DIR / "community" / "morning-price.md").read_text(encoding="utf-8")
    path.write_text(
        text.replace("category: fresh", "category: fresh\nsections: {}"), encoding="utf-8"
    )
    with pytest.raises(SopDefinitionError, match="unknown key `sections`"):
        load_sop(path)
