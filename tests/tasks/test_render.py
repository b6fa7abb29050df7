"""Rendering: filters, the sandbox, strict variables, and every shipped SOP against its sample."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from models.sop_context import step_context
from models.sop_loader import load_sops
from sopflow.errors import TemplateError
from tasks.render import (
    compile_step,
    compile_template,
    date_cn,
    mask,
    render,
    time_cn,
    truncate_bytes,
    weekday_cn,
    yuan,
    zhe,
)

SOP_DIR = Path(__file__).resolve().parents[2] / "sop"
GROUP = {"name": "北京生鲜爱好者群", "owner": {"name": "王芳"}}


def run(source: str, first_line: int = 1, **context: object) -> str:
    compiled = compile_template(
        source, sop_id="t", step="main", path="sop/t.md", first_line=first_line
    )
    return render(compiled, context)


@pytest.mark.parametrize(
    ("fen", "text"), [(399, "3.99元"), (1000, "10元"), (1050, "10.5元"), (5, "0.05元"), (0, "0元")]
)
def test_yuan_shows_fen_as_ops_write_prices(fen: int, text: str) -> None:
    assert yuan(fen) == text


def test_yuan_with_symbol_and_wrong_input() -> None:
    assert yuan(399, symbol=True) == "¥3.99"
    with pytest.raises(TypeError, match="amount in fen"):
        yuan("3.99")


@pytest.mark.parametrize(
    ("ratio", "text"), [(0.5, "5折"), (0.85, "8.5折"), (0.1, "1折"), (0.666, "6.7折")]
)
def test_zhe_shows_a_discount(ratio: float, text: str) -> None:
    assert zhe(ratio) == text


def test_zhe_refuses_ratios_outside_zero_and_one() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        zhe(5)


def test_date_and_name_filters() -> None:
    day = dt.date(2026, 11, 24)
    assert (date_cn(day), weekday_cn(day)) == ("11月24日", "周二")
    assert time_cn(dt.datetime(2026, 12, 12, 10, 0)) == "10点"
    assert time_cn(dt.datetime(2026, 12, 12, 20, 30)) == "20点30分"
    assert mask("张三丰") == "张*"
    assert truncate_bytes("散养土鸡蛋", 10) == "散养…"


def test_example_from_the_design_renders_without_blank_lines() -> None:
    source = (
        "\n早上好,{{ group.name }}!今日早报价 ☀️\n"
        "{% for d in deals %}\n· {{ d.name }} {{ d.price | yuan }}/{{ d.unit }},限前{{ d.stock }}单\n"
        "{% endfor %}\n\n"
    )
    deals = [{"name": "鸡蛋", "price": 399, "unit": "斤", "stock": 200}]
    assert run(source, group=GROUP, deals=deals) == (
        "早上好,北京生鲜爱好者群!今日早报价 ☀️\n· 鸡蛋 3.99元/斤,限前200单"
    )


def test_missing_variable_names_sop_step_variable_and_file_line() -> None:
    with pytest.raises(TemplateError) as caught:
        run("早上好\n{{ grop.name }}", first_line=15, group=GROUP)
    error = caught.value
    assert (error.sop_id, error.step, error.variable) == ("t", "main", "grop")
    assert str(error) == (
        "t/main: sop/t.md:16: variable `grop` is not available in step `main` "
        "(did you mean `group`?); available: group"
    )


def test_missing_nested_field_names_the_whole_expression() -> None:
    with pytest.raises(TemplateError) as caught:
        run("{{ group.owner.nmae }}", group=GROUP)
    assert caught.value.variable == "group.owner.nmae"
    assert "did you mean `name`?" in str(caught.value)


def test_missing_value_passed_to_a_filter_fails_too() -> None:
    with pytest.raises(TemplateError, match="`d.prise` does not exist"):
        run("{% for d in deals %}{{ d.prise | yuan }}{% endfor %}", deals=[{"price": 1}])


def test_none_is_never_printed() -> None:
    with pytest.raises(TemplateError, match="empty"):
        run("{{ product.old_price }}", product={"old_price": None})


@pytest.mark.parametrize(
    "source", ["{{ ''.__class__ }}", "{{ group.__class__.__mro__ }}", "{{ deals.append(1) }}"]
)
def test_sandbox_blocks_unsafe_access(source: str) -> None:
    with pytest.raises(TemplateError, match="unsafe"):
        run(source, group=GROUP, deals=[])


def test_syntax_error_names_the_file_line() -> None:
    with pytest.raises(TemplateError, match=r"sop/t.md:21: template syntax error"):
        run("好\n{{ group.name }", first_line=20)


def test_compiled_templates_are_cached_by_content() -> None:
    [spec, *_] = load_sops(SOP_DIR)
    assert compile_step(spec, "main") is compile_step(spec, "main")


def test_every_shipped_sop_renders_against_its_sample_context() -> None:
    for spec in load_sops(SOP_DIR):
        for step in spec.step_names:
            text = render(compile_step(spec, step), step_context(spec, step))
            assert text.strip()
            assert len(text.encode()) <= 4000
            assert "{{" not in text and "None" not in text


def test_morning_price_reads_like_the_operators_write_it() -> None:
    spec = next(s for s in load_sops(SOP_DIR) if s.id == "morning-price")
    text = render(compile_step(spec, "main"), step_context(spec, "main"))
    assert "今日散养土鸡蛋3.99元/斤" in text and "限前200单" in text
    assert text.startswith("北京生鲜爱好者群的家人们早上好")
