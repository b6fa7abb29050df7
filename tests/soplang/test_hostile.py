"""Hostile and malformed SOP files: `sopflow lint` and `sopflow preview` refuse each one quickly, never hang or crash."""

from __future__ import annotations

import copy
import datetime as dt
import random
import time
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from core.errors import SopDefinitionError
from core.settings import PROJECT_ROOT, reset_settings
from models import db
from sopflow.cli import app
from soplang.spec import SopFrontMatter
from tasks.sops import load_sop_by_id
from tests.factories import make_world

SOP_DIR = PROJECT_ROOT / "sop"
SHIPPED = sorted(p for p in SOP_DIR.rglob("*.md") if p.name != "README.md")
MORNING = (SOP_DIR / "community" / "morning-price.md").read_text(encoding="utf-8")
FRONT = MORNING.split("## main\n")[0]  # `---` … `---`, a valid community front matter
DAY = dt.date(2026, 11, 24)
SECONDS_PER_FILE = 3.0  # lint or preview of one file; the render budget itself is 1 s


@dataclass(frozen=True)
class Case:
    name: str
    content: Callable[[], bytes]
    must_fail: bool = True  # hostile: an error is required; a truncation may still be valid


def text(value: str) -> Callable[[], bytes]:
    return lambda: value.encode("utf-8", "surrogatepass")


def body(template: str) -> Callable[[], bytes]:
    """The shipped morning-price front matter with `template` as its `## main` text."""
    return text(f"{FRONT}## main\n{template}\n")


def front(yaml_text: str) -> Callable[[], bytes]:
    return text(f"---\n{yaml_text}\n---\n## main\n{{{{ group.name }}}}好\n")


def laughs(levels: int, width: int = 9) -> str:
    lines = ['a0: &a0 "lol"']
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines)


# ---------------------------------------------------------------- hostile files (each must be refused)

HOSTILE = [
    Case("alias-bomb", front(laughs(10))),
    Case("alias-bomb-in-merge-keys", front(laughs(6) + "\nm: {<<: [*a5, *a5]}")),
    Case("alias-into-itself", front("id: &loop [a, *loop]")),
    Case("hundred-aliases", front("x: &x a\nl: [" + ", ".join(["*x"] * 100) + "]")),
    Case("deep-flow-list", front("id: " + "[" * 5000 + "]" * 5000)),
    Case("deep-flow-map", front("id: " + "{a: " * 3000 + "b" + "}" * 3000)),
    Case("deep-block-list", front("id:\n" + "".join("  " * i + "-\n" for i in range(200)))),
    Case(
        "deep-block-map",
        front("".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v"),
    ),
    Case(
        "surrogate-escape-in-title",
        text(FRONT.replace("title: 早报价 · 每日特价早报", 'title: "\\ud800"') + "## main\nhi\n"),
    ),
    Case(
        "surrogate-escape-in-list",
        text(FRONT.replace("[生鲜, 母婴", '["\\udfff", 母婴') + "## main\nhi\n"),
    ),
    Case("surrogate-escape-in-key", front('"\\ud83d": 1')),
    Case("escape-beyond-unicode", front('title: "\\UFFFFFFFF"')),
    Case("bad-timestamp-tag", front("title: !!timestamp 2026-99-99")),
    Case("bad-int-tag", front("title: !!int zz")),
    Case("python-object-tag", front('id: !!python/object/apply:os.system ["true"]')),
    Case("five-thousand-digit-number", front("title: " + "9" * 5000)),
    Case("surrogate-bytes-in-body", lambda: FRONT.encode() + b"## main\n\xed\xa0\x80\n"),
    Case("surrogate-bytes-in-front", lambda: b"---\nid: \xed\xb0\x80\n---\n## main\nhi\n"),
    Case(
        "latin-1-text", lambda: MORNING.replace("早报价", "caf\u00e9").encode("latin-1", "replace")
    ),
    Case("utf-16", lambda: MORNING.encode("utf-16")),
    Case("nul-in-body", lambda: MORNING.replace("到店自提", "到店\x00自提").encode()),
    Case(
        "nul-in-front", lambda: MORNING.replace("kind: community", "kind: comm\x00unity").encode()
    ),
    *(
        Case(f"random-binary-{n}", lambda n=n: random.Random(n).randbytes(n))
        for n in (64, 4096, 65536)
    ),
    Case(
        "front-then-binary",
        lambda: FRONT.encode() + b"## main\n" + random.Random(7).randbytes(2048),
    ),
    Case("48-MB", lambda: MORNING.encode() + b"x" * (48 * 1024 * 1024)),
    Case("300-KB", lambda: (MORNING + "多" * (300 * 1024 // 3)).encode()),
    # templates that would hang or exhaust memory while rendering
    Case(
        "nested-range-loops",
        body(
            "{% for i in range(10000) %}{% for j in range(10000) %}{{ j }}{% endfor %}{% endfor %}"
        ),
    ),
    Case("string-times-ten-billion", body("{{ 'x' * 10**10 }}")),
    Case("list-times-billion", body("{{ [1] * 10**9 }}")),
    Case("power-tower", body("{{ 10 ** 10 ** 10 ** 10 ** 10 }}")),  # Jinja's ** is left-associative
    Case("power-of-power", body("{{ 10 ** (10 ** 10) }}")),
    Case("huge-range-in-join", body("{{ range(10**10) | join(',') }}")),
    Case("range-over-cap-in-join", body("{{ range(99999) | join(',') }}")),
    Case("macro-recursion", body("{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}")),
    Case(
        "macro-infinite-recursion", body("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}")
    ),
    Case("recursive-loop", body("{% for x in [[1]] recursive %}{{ loop([x, x]) }}{% endfor %}")),
    Case("center-billion", body("{{ 'x' | center(10**9) }}")),
    Case("ljust-billion", body("{{ 'x'.ljust(999999999) }}")),
    Case("format-width", body("{{ '{:>999999999}'.format(1) }}")),
    Case("percent-width", body("{{ '%999999999d' % 1 }}")),
    Case("doubling-concat", body("{% set s = 'x' * 60000 %}{{ s ~ s ~ s }}")),
    Case(
        "nested-literals",
        body("{% set a = ['x' * 9999] * 10 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}{{ b }}"),
    ),
    Case("static-text-in-loop", body("{% for i in range(5000) %}" + "好" * 2000 + "{% endfor %}")),
    Case("replace-empty", body("{{ ('x' * 5000) | replace('', 'y' * 5000) }}")),
    Case("lipsum", body("{{ lipsum(10**9) }}")),
    Case("deep-parentheses", body("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}")),
    Case("deep-ifs", body("{% if 1 %}" * 300 + "x" + "{% endif %}" * 300)),
    Case("deep-fors", body("{% for a in deals %}" * 30 + "x" + "{% endfor %}" * 30)),
    Case("surrogate-escape-in-template", body("{{ '\\ud800' }}")),
    Case("surrogate-from-percent-c", body("{{ '%c' % 55296 }}")),
    Case("five-thousand-digit-literal", body("{{ " + "9" * 5000 + " }}")),
]


# ---------------------------------------------------------------- every front-matter field with a wrong type

BASE: dict[str, Any] = {
    "id": "morning-price",
    "title": "全字段",
    "kind": "lifecycle",
    "channel": "customer",
    "category": "fresh",
    "priority": "normal",
    "schedule": {"cron": "0 10 * * *", "timezone": "Asia/Shanghai", "days": "everyday"},
    "audience": {
        "customers": {
            "stage": ["dormant"],
            "tier": ["gold"],
            "region": ["上海"],
            "tags_any": ["宝妈"],
            "tags_none": ["投诉中"],
            "last_purchase_days": {"gte": 30, "lte": 90},
            "holdout": 0.1,
        }
    },
    "approval": {"over": 20000},
    "steps": [{"name": "main", "after": "0d", "send_at": "10:00"}],
    "allow_claims": [],
    "attribution": {"window": "72h"},
}
WRONG = {"map": {"x": [1]}, "list": [[1], {"a": 1}]}  # wrong for every field, scalar or not


def field_paths(model: type[BaseModel], prefix: tuple[str | int, ...] = ()) -> Iterator[tuple]:
    """Every field of the front-matter models, as key paths (`steps.0.send_at`)."""
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        yield path
        inner = next((m for m in _models_in(info.annotation)), None)
        if inner is not None:
            is_list = "list" in str(info.annotation)
            yield from field_paths(inner, (*path, 0) if is_list else path)


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def with_value(path: tuple, value: Any) -> Callable[[], bytes]:
    data = copy.deepcopy(BASE)
    node: Any = data
    for key in path[:-1]:
        node = node[key] if isinstance(node, list) else node.setdefault(key, {})
    node[path[-1]] = copy.deepcopy(value)
    dumped = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    return text(f"---\n{dumped}---\n## main\n{{{{ customer.name }}}}您好\n")


WRONG_TYPES = [
    Case(f"wrong-{kind}-{'.'.join(map(str, path))}", with_value(path, value))
    for path in field_paths(SopFrontMatter)
    for kind, value in WRONG.items()
]


# ---------------------------------------------------------------- shipped files cut short


def cut(path: Path, at: Callable[[bytes], int]) -> Callable[[], bytes]:
    return lambda: (lambda raw: raw[: at(raw)])(path.read_bytes())


def inside_a_character(raw: bytes) -> int:
    """A cut after the first byte of a multi-byte character in the second half."""
    return next(i for i in range(len(raw) // 2, len(raw)) if raw[i] >= 0xE0) + 1


TRUNCATIONS = [
    Case(f"cut-{path.stem}-{label}", cut(path, at), must_fail=label == "mid-char")
    for path in SHIPPED
    for label, at in (
        ("fifth", lambda raw: len(raw) // 5),
        ("half", lambda raw: len(raw) // 2),
        ("end-20", lambda raw: len(raw) - 20),
        ("mid-char", inside_a_character),
    )
]

CASES = HOSTILE + WRONG_TYPES + TRUNCATIONS


# ---------------------------------------------------------------- running them through the CLI


@pytest.fixture(scope="module")
def prefect_harness() -> None:
    """Lint, preview and `load_sop_by_id.fn` never call the Prefect API: skip the session's test server."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated SQLite database with the demo groups and deals of DAY, for every preview here."""
    folder = tmp_path_factory.mktemp("hostile-world")
    url = f"sqlite:///{folder / 'sopflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOPFLOW_DATABASE_URL", url)
        patch.setenv("SOPFLOW_DATA_DIR", str(folder / "data"))
        reset_settings()
        db.dispose_engines()
        db.upgrade(url)
        make_world(DAY, url)
        yield url
        db.dispose_engines()
    reset_settings()


def invoke(*args: str) -> tuple[Any, float]:
    started = time.perf_counter()
    result = CliRunner().invoke(app, list(args))
    return result, time.perf_counter() - started


def assert_refused_cleanly(
    result: Any, seconds: float, path: Path, case: Case, command: str
) -> None:
    output = result.output
    assert seconds < SECONDS_PER_FILE, f"{command} {case.name} took {seconds:.2f} s"
    assert "Traceback" not in output and "lint could not finish" not in output, output
    unexpected = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not unexpected, f"{command} {case.name}: {result.exception!r}"
    assert result.exit_code in (0, 1), output
    for line in output.splitlines():
        if ": error: " in line:
            assert line.startswith(f"{path}:"), line
    if case.must_fail:
        assert result.exit_code == 1, f"{command} {case.name} was not refused:\n{output[:2000]}"
        assert f"{path}:" in output and ": error: " in output, output[:2000]


def test_the_fuzz_set_is_large_and_covers_every_front_matter_field() -> None:
    """At least 50 hostile files, and each spec field has a wrong type that must fail."""
    assert len(HOSTILE) >= 50 and len(CASES) >= 150
    assert {"id", "schedule.cron", "audience.customers.last_purchase_days.gte", "steps.0.at"} <= {
        ".".join(map(str, p)) for p in field_paths(SopFrontMatter)
    }


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_lint_and_preview_refuse_each_file_quickly_without_a_traceback(
    case: Case, world: str, tmp_path: Path
) -> None:
    """`path:line: error: …` from both commands, exit 1 when hostile, each under SECONDS_PER_FILE."""
    path = tmp_path / "morning-price.md"
    path.write_bytes(case.content())

    linted, lint_seconds = invoke("lint", str(path))
    previewed, preview_seconds = invoke("preview", str(path), "--date", str(DAY))

    assert_refused_cleanly(linted, lint_seconds, path, case, "lint")
    if case.must_fail:
        assert ": error: " in linted.output
    assert_refused_cleanly(previewed, preview_seconds, path, case, "preview")


def test_a_shipped_sop_still_lints_clean_and_previews(world: str) -> None:
    """morning-price passes lint and renders a real group's text through the same limits."""
    path = SOP_DIR / "community" / "morning-price.md"

    linted, _ = invoke("lint", str(path))
    previewed, _ = invoke("preview", str(path), "--date", str(DAY))

    assert linted.exit_code == 0 and ": error: " not in linted.output, linted.output
    assert previewed.exit_code == 0, previewed.output
    assert "北京生鲜爱好者群" in previewed.output and "鸡蛋3.99元/斤" in previewed.output


def test_a_flow_refuses_an_sop_whose_template_blows_its_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_sop_by_id (the first task of every flow) fails fast with the lint error, not a hang."""
    hostile = tmp_path / "sop" / "morning-price.md"
    hostile.parent.mkdir()
    hostile.write_bytes(
        body("{% for i in range(9999) %}{% for j in range(9999) %}{% endfor %}{% endfor %}")()
    )
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(hostile.parent))
    reset_settings()
    started = time.perf_counter()

    with pytest.raises(SopDefinitionError) as refused:
        load_sop_by_id.fn("morning-price")

    assert time.perf_counter() - started < SECONDS_PER_FILE
    [problem] = refused.value.problems
    line = FRONT.count("\n") + 2  # the line after `## main`
    assert problem.startswith(f"{hostile}:{line}: error: render limit: loops turn more than 10,000")
    reset_settings()


def test_the_ops_guide_states_the_limits_the_code_enforces() -> None:
    from soplang import budget
    from soplang import safe_yaml as sop_yaml
    from soplang.file_text import MAX_FILE_BYTES

    guide = (SOP_DIR / "README.md").read_text(encoding="utf-8")
    stated = [
        f"**{MAX_FILE_BYTES // 1024} KB**",
        f"**{sop_yaml.MAX_DEPTH} 层**",
        f"**{sop_yaml.MAX_ALIASES} 个**",
        f"**{sop_yaml.MAX_NODES // 10_000} 万个值**",
        f"**{budget.MAX_RANGE // 10_000} 万个数**",
        f"**{budget.MAX_LOOP_TURNS // 10_000} 万圈**",
        f"**{budget.MAX_CALL_DEPTH} 层**",
        f"**{budget.MAX_STEPS // 10_000} 万步**",
        f"**{budget.MAX_SIZE // 10_000} 万**个字符或元素",
        f"{budget.MAX_INT_BITS} 位二进制",
        f"**{budget.MAX_OUTPUT // 10_000} 万字符**",
        f"**{budget.MAX_SECONDS:g} 秒**",
    ]
    assert [s for s in stated if s not in guide] == []
