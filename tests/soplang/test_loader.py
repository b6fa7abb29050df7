"""Loading SOP files into SopSpec: line numbers, sections, implicit steps, clear failures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.errors import SopDefinitionError
from soplang.file_text import MAX_FILE_BYTES
from soplang.lint import lint_file
from soplang.loader import find_sop, load_sop, load_sops
from soplang.spec import SopSpec
from tests.soplang.lines import line_of

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
    assert morning.section("main").first_line == line_of(MORNING, "{{ group.name }}")
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


# ---------------------------------------------------------------- hostile files are refused before harm

MORNING = (SOP_DIR / "community" / "morning-price.md").read_text(encoding="utf-8")


def problems_of(path: Path) -> list[str]:
    with pytest.raises(SopDefinitionError) as caught:
        load_sop(path)
    return caught.value.problems


def test_a_file_over_the_size_limit_is_refused_from_its_size_alone(tmp_path: Path) -> None:
    """A 48 MB file is refused by its size without being read (a sparse file has no data to read)."""
    path = tmp_path / "big.md"
    with path.open("wb") as handle:
        handle.truncate(48 * 1024 * 1024)
    assert problems_of(path) == [
        f"{path}:1: error: the file is 48.0 MB; an SOP file may be at most 256 KB; is this really an SOP?"
    ]


def test_a_file_just_under_the_limit_is_read(tmp_path: Path) -> None:
    """Padded with a Jinja comment, so the file is still a valid SOP with a short text."""
    path = tmp_path / "morning-price.md"
    padding = MAX_FILE_BYTES - len(MORNING.encode()) - len(b"{##}")
    path.write_bytes(MORNING.encode() + b"{#" + b"#" * padding + b"#}")
    assert path.stat().st_size == MAX_FILE_BYTES
    assert load_sop(path).id == "morning-price"
    path.write_bytes(path.read_bytes() + b"#")
    [problem] = problems_of(path)
    assert "an SOP file may be at most 256 KB" in problem


def test_a_fifo_is_refused_instead_of_blocking_the_read(tmp_path: Path) -> None:
    path = tmp_path / "pipe.md"
    os.mkfifo(path)
    assert problems_of(path) == [f"{path}:1: error: cannot read the file: it is not a regular file"]


def write_front(tmp_path: Path, front: str) -> Path:
    path = tmp_path / "x.md"
    path.write_text(f"---\n{front}\n---\n## main\nhi\n", encoding="utf-8")
    return path


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    lines = ['a0: &a0 "lol"'] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)
    ]
    path = write_front(tmp_path, "\n".join(lines))
    assert problems_of(path) == [
        f"{path}:7: error: front matter has more than 10,000 values once its aliases (`*name`) "
        "are expanded"
    ]


def test_too_many_aliases_and_an_alias_into_itself_are_refused(tmp_path: Path) -> None:
    many = write_front(tmp_path, "x: &x a\nl: [" + ", ".join(["*x"] * 65) + "]")
    assert "front matter uses more than 64 aliases" in problems_of(many)[0]
    loop = write_front(tmp_path, "id: &loop [a, *loop]")
    assert problems_of(loop) == [
        f"{loop}:2: error: alias `*loop` refers to the value it is inside of"
    ]


def test_a_few_aliases_still_work(tmp_path: Path) -> None:
    path = tmp_path / "dormant-wakeup.md"
    text = LIFECYCLE.replace('send_at: "10:00"}', 'send_at: &ten "10:00"}').replace(
        "send_at: 10:30", "send_at: *ten"
    )
    path.write_text(text, encoding="utf-8")
    assert load_sop(path).step("coupon").send_at == "10:00"


@pytest.mark.parametrize(
    "front", ["id: " + "[" * 5000 + "]" * 5000, "".join("  " * i + f"k{i}:\n" for i in range(100))]
)
def test_deep_nesting_is_refused_before_python_recursion_runs_out(
    tmp_path: Path, front: str
) -> None:
    [problem] = problems_of(write_front(tmp_path, front))
    assert "front matter nests more than 32 levels deep" in problem


@pytest.mark.parametrize("value", ['"\\ud800"', '["\\udfff"]', '"a\\uDBFFb"'])
def test_a_lone_surrogate_escape_in_yaml_is_refused_on_its_line(tmp_path: Path, value: str) -> None:
    path = tmp_path / "x.md"
    path.write_text(MORNING.replace("title: 早报价 · 每日特价早报", f"title: {value}"))
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:3: error: the escape for U+D")
    assert "(a lone surrogate) is not a character" in problem


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"\xed\xa0\x80", "byte 0xed at column 1: invalid continuation byte"),
        (b"ok \xff", "byte 0xff at column 4: invalid start byte"),
    ],
)
def test_invalid_utf8_names_line_and_byte(tmp_path: Path, raw: bytes, detail: str) -> None:
    path = tmp_path / "x.md"
    path.write_bytes(MORNING.encode() + raw + b"\n")
    line = len(MORNING.splitlines()) + 1  # the bad bytes go on a line after the shipped file
    assert problems_of(path) == [
        f"{path}:{line}: error: the file is not UTF-8 text ({detail}); "
        "save it as UTF-8 (无BOM) in your editor"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!timestamp 2026-13-01", "cannot read this value: month must be in 1..12"),
        ("9" * 5000, "Exceeds the limit (4300 digits) for integer string conversion"),
    ],
)
def test_values_pyyaml_cannot_build_are_errors_not_crashes(
    tmp_path: Path, value: str, message: str
) -> None:
    [problem] = problems_of(write_front(tmp_path, f"title: {value}"))
    assert problem.startswith(f"{tmp_path / 'x.md'}:2: error: front matter is not valid YAML: ")
    assert message in problem and "set_int_max_str_digits" not in problem


@pytest.mark.parametrize("escape", ["\\UFFFFFFFF", "\\U00110000"])
def test_an_escape_past_unicode_is_refused_in_the_same_words_on_every_python(
    tmp_path: Path, escape: str
) -> None:
    """PyYAML lets `chr()` fail, and Python 3.11 and 3.13 word that differently; we do not."""
    [problem] = problems_of(write_front(tmp_path, f'title: "早{escape}"'))
    assert problem == (
        f"{tmp_path / 'x.md'}:2: error: the escape `{escape}` is not a character (Unicode ends "
        "at U+10FFFF); remove it or write the character itself"
    )


# ---------------------------------------------------------------- one parse gives a fully checked spec


def test_loading_refuses_a_template_error_with_exactly_the_lines_lint_reports() -> None:
    """The front matter of this file is valid; its text uses a variable the step does not get."""
    path = BAD / "unknown-variable.md"
    with pytest.raises(SopDefinitionError) as caught:
        load_sop(path)
    assert caught.value.problems == [str(p) for p in lint_file(path).errors]
    assert caught.value.problems and all(p.startswith(f"{path}:") for p in caught.value.problems)


def test_loading_by_id_names_the_sop_and_each_error_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "community" / "morning-price.md"
    path.parent.mkdir()
    path.write_text(MORNING.replace("{{ group.name }}", "{{ group.nmae }}"), encoding="utf-8")
    with pytest.raises(SopDefinitionError) as caught:
        load_sop("morning-price", tmp_path)
    assert caught.value.sop_id == "morning-price"
    [problem] = caught.value.problems
    line = line_of(MORNING, "{{ group.name }}")
    assert problem.startswith(f"{path}:{line}: error: `group.nmae` does not exist")


def test_loading_by_id_and_by_path_give_the_same_spec() -> None:
    by_id = load_sop("morning-price", SOP_DIR)
    assert (
        by_id
        == load_sop(SOP_DIR / "community" / "morning-price.md")
        == find_sop("morning-price", SOP_DIR)
    )
