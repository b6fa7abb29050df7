"""Rendering: filters, the sandbox, strict variables, and every shipped SOP against its sample."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from core.errors import TemplateError
from soplang import budget as render_budget
from soplang.context import step_context
from soplang.filters import date_cn, mask, time_cn, truncate_bytes, weekday_cn, yuan, zhe
from soplang.loader import load_sops
from soplang.template import compile_step, compile_template, render

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


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ campaign.items | length }}", "`campaign` has no field `items`; did you mean `items`?"),
        ("{{ campaign['items'] }}", "`campaign` has no field `items`; did you mean `items`?"),
        ("{{ campaign.get('name') }}", "`campaign.get` does not exist; `campaign` has: name"),
        ("{% for v in campaign.values() %}{{ v }}{% endfor %}", "`campaign.values` does not exist"),
        ("{{ campaign.pop('name') }}", "`campaign.pop` does not exist"),
    ],
)
def test_a_dict_field_lookup_never_reaches_the_dict_methods(source: str, message: str) -> None:
    """An SOP author writing `campaign.items` means a field: no dict method leaks through."""
    with pytest.raises(TemplateError) as caught:
        run(source, campaign={"name": "双12"}, items=[{"name": "洗衣液"}])
    assert message in str(caught.value)


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


# ---------------------------------------------------------------- the render budget


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{{ 'x' * 10**10 }}",
            "`'x' * 10000000000` would make a text of 10,000,000,000 characters",
        ),
        ("{{ [1] * 10**9 }}", "`[…] * 1000000000` would make a list of 1,000,000,000 items"),
        ("{{ 10 ** (10 ** 10) }}", "would be a number of more than 4,096 bits"),
        ("{{ range(10**10) | join }}", "`range` of 10,000,000,000 numbers is over the limit"),
        (
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
            "loops turn more than 10,000 times in one message",
        ),
        (
            "{% macro f() %}{{ f() }}{{ f() }}{% endmacro %}{{ f() }}",
            "calls nest more than 50 deep",
        ),
        ("{{ 'x' | center(10**9) }}", "a width of 1,000,000,000 is over the limit"),
        ("{{ 'x'.ljust(10**9) }}", "`.ljust()` width 1,000,000,000 is over the limit"),
        ("{{ '{:>999999999}'.format(1) }}", "a width or precision of 999999999"),
        ("{{ '%999999999d' % 1 }}", "a width or precision of 999999999"),
        ("{% set s = 'x' * 60000 %}{{ s ~ s }}", "`~` would make a text of 120,000 characters"),
        (
            "{% for i in range(9000) %}" + "好" * 100 + "{% endfor %}",
            "longer than 100,000 characters",
        ),
        (
            "{% set a = ['x' * 9999] * 9 %}{{ [a, a] }}",
            "makes a value of more than 100,000 characters and items",
        ),
    ],
)
def test_a_render_over_budget_fails_fast_with_a_template_error(source: str, message: str) -> None:
    """Each limit stops the render within a fraction of a second with a TemplateError naming it."""
    started = time.perf_counter()
    with pytest.raises(TemplateError, match="render limit: ") as caught:
        run("好\n" + source, first_line=20)
    assert time.perf_counter() - started < 1.0
    assert message in str(caught.value)
    assert caught.value.line == 21  # the file line of the template line that blew the budget


def test_a_render_that_runs_too_long_stops_at_the_time_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The clock is checked as the render goes: a slow render stops at MAX_SECONDS."""
    monkeypatch.setattr(render_budget, "MAX_SECONDS", 0.05)
    started = time.perf_counter()
    with pytest.raises(TemplateError, match=r"rendering took longer than 0.05 s"):
        run(
            "{% for i in range(9999) %}{{ ('x' * 9999) | replace('x', 'yy') | length }}{% endfor %}"
        )
    assert time.perf_counter() - started < 1.0


def test_budgets_are_per_render_so_many_renders_each_get_their_own() -> None:
    compiled = compile_template(
        "{% for i in range(6000) %}{% endfor %}ok", sop_id="t", step="main", path="sop/t.md"
    )
    assert [render(compiled, {}) for _ in range(3)] == ["ok"] * 3


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{{ '\\ud800' }}",
            "sop/t.md:2: the escape for U+D800 (a lone surrogate) is not a character",
        ),
        ("{{ '%c' % 55296 }}", "sop/t.md:1: the text would contain U+D800 (a lone surrogate)"),
        (
            "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",
            "sop/t.md:1: the template nests too deeply",
        ),
        (
            "{% if 1 %}" * 200 + "x" + "{% endif %}" * 200,
            "sop/t.md:1: the template nests too deeply",
        ),
    ],
)
def test_text_that_is_not_text_and_templates_python_cannot_compile_are_template_errors(
    source: str, message: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        run("好\n" + source if "ud800" in source else source)
    assert message in str(caught.value)


def test_sandbox_keeps_ordinary_jinja_working() -> None:
    source = (
        "{% for d in deals %}{{ loop.index }}/{{ loop.length }} {{ d.name }}{% endfor %}"
        "|{{ deals | map(attribute='name') | join(',') }}|{{ 'a' ~ 'b' }}|{{ '%.1f' % 2.25 }}"
        "|{{ '{:,}'.format(1234567) }}|{{ 3 * 'ab' }}|{{ 2 ** 10 }}|{{ range(3) | list }}"
        "{% set ns = namespace(n=0) %}{% for d in deals %}{% set ns.n = ns.n + d.price %}{% endfor %}"
        "|{{ ns.n | yuan }}"
    )
    deals = [{"name": "鸡蛋", "price": 399}, {"name": "牛奶", "price": 1000}]
    assert run(source, deals=deals) == (
        "1/2 鸡蛋2/2 牛奶|鸡蛋,牛奶|ab|2.2|1,234,567|ababab|1024|[0, 1, 2]|13.99元"
    )


def test_truncate_bytes_is_linear_on_long_text() -> None:
    started = time.perf_counter()
    assert truncate_bytes("好" * 100_000, 10) == "好好…"
    assert time.perf_counter() - started < 0.1
