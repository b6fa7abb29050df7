"""The one place SOP text is rendered: a sandboxed, strict Jinja2 environment and its filters."""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache, lru_cache, wraps
from types import TracebackType
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.meta import find_undeclared_variables
from jinja2.runtime import missing

from core.errors import TemplateError
from soplang.budget import BudgetExceeded, render_budget, write
from soplang.sandbox import BudgetedEnvironment, TemplateTextError

if TYPE_CHECKING:
    from jinja2 import Template

    from soplang.spec import SopSpec

WEEKDAYS_CN = "一二三四五六日"


# ---------------------------------------------------------------- filters


def yuan(fen: Any, symbol: bool = False) -> str:
    """An amount in fen as ops write prices: 399 → "3.99元", 1000 → "10元"; `symbol=True` → "¥3.99"."""
    if isinstance(fen, bool) or not isinstance(fen, int | float | Decimal):
        raise TypeError(f"yuan expects an amount in fen (a whole number such as 399), got {fen!r}")
    cents = int(Decimal(str(fen)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    whole, part = divmod(abs(cents), 100)
    number = f"{'-' if cents < 0 else ''}{whole}" + (f".{part:02d}".rstrip("0") if part else "")
    return f"¥{number}" if symbol else f"{number}元"


def zhe(discount: Any) -> str:
    """A discount ratio as 折: 0.5 → "5折", 0.85 → "8.5折"."""
    if (
        isinstance(discount, bool)
        or not isinstance(discount, int | float | Decimal)
        or not 0 < float(discount) < 1
    ):
        raise ValueError(f"zhe expects a discount between 0 and 1 such as 0.5, got {discount!r}")
    tenths = Decimal(str(float(discount) * 10)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{tenths.normalize():f}折"


def date_cn(value: dt.date) -> str:
    """A date (or datetime) as "11月24日"."""
    return f"{value.month}月{value.day}日"


def time_cn(value: dt.datetime | dt.time) -> str:
    """A time of day as ops say it: 10:00 → "10点", 20:30 → "20点30分"."""
    return f"{value.hour}点" + (f"{value.minute}分" if value.minute else "")


def weekday_cn(value: dt.date) -> str:
    """A date's weekday as "周二"."""
    return f"周{WEEKDAYS_CN[value.weekday()]}"


def step_basics(day: dt.date, sop_id: str, sop_title: str) -> dict[str, Any]:
    """The variables every step's context has: `sop`, `today` and `weekday`."""
    return {"today": day, "weekday": weekday_cn(day), "sop": {"id": sop_id, "title": sop_title}}


def mask(name: Any) -> str:
    """A name with all but its first character hidden: "张三丰" → "张*" (buyers' shows, recaps)."""
    text = str(name).strip()
    return f"{text[0]}*" if text else ""


def truncate_bytes(value: Any, limit: int, end: str = "…") -> str:
    """Text cut to at most `limit` UTF-8 bytes (ending with `end` when cut), never mid-character."""
    text = str(value)
    data = text.encode()
    if len(data) <= limit:
        return text
    keep = max(limit - len(end.encode()), 0)
    return data[:keep].decode("utf-8", "ignore") + end  # "ignore" drops a cut character


def _strict(function: Callable[..., str]) -> Callable[..., str]:
    """A filter that fails like StrictUndefined when given a missing value (Jinja passes it silently)."""

    @wraps(function)
    def checked(value: Any, *args: Any, **kwargs: Any) -> str:
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        return function(value, *args, **kwargs)

    return checked


FILTERS = {
    f.__name__: _strict(f) for f in (yuan, zhe, date_cn, time_cn, weekday_cn, mask, truncate_bytes)
}


# ---------------------------------------------------------------- environment


class MissingValue(UndefinedError):
    """A template used a variable or field the context does not have."""

    def __init__(self, message: str, *, name: Any = None, owner: Any = missing) -> None:
        super().__init__(message)
        self.name = name
        self.owner = owner


class SopUndefined(StrictUndefined):
    """StrictUndefined whose error keeps the missing name and the object it was looked up on."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: Any = UndefinedError,
    ):
        if exc is UndefinedError:
            exc = _missing_value_factory(name, obj)
        super().__init__(hint, obj, name, exc)


def _missing_value_factory(name: Any, owner: Any) -> Any:
    def make(message: str) -> MissingValue:
        return MissingValue(message, name=name, owner=owner)

    return make


class EmptyValue(ValueError):
    """`{{ x }}` where x is None: never print "None" to a customer."""


def _finalize(value: Any) -> Any:
    if value is None:
        raise EmptyValue(
            "a value in the text is empty (None); guard it with {% if … %} or write {{ x or '…' }}"
        )
    return write(value)


def make_environment() -> BudgetedEnvironment:
    """A fresh sandboxed, budgeted environment: strict undefined, no autoescape, no blank lines from tags."""
    env = BudgetedEnvironment(
        undefined=SopUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        finalize=_finalize,
    )
    env.filters.update(FILTERS)
    env.guard_filters()
    return env


@cache
def environment() -> BudgetedEnvironment:
    """The shared environment (templates are compiled once per process)."""
    return make_environment()


# ---------------------------------------------------------------- compile and render


class RenderFailure(TemplateError):
    """A TemplateError that also knows the file, the file line and the message without them."""

    def __init__(
        self,
        detail: str,
        *,
        sop_id: str | None,
        step: str | None,
        path: str | None = None,
        line: int | None = None,
        variable: str | None = None,
    ) -> None:
        where = ":".join(str(p) for p in (path, line) if p is not None)
        super().__init__(
            f"{where}: {detail}" if where else detail, sop_id=sop_id, step=step, variable=variable
        )
        self.detail = detail
        self.path = path
        self.line = line


@dataclass(frozen=True)
class CompiledStep:
    """One step's template, compiled once; `first_line` maps template lines to file lines."""

    sop_id: str
    step: str
    source: str
    digest: str
    path: str | None
    first_line: int
    template: Template

    @property
    def name(self) -> str:
        return f"<sop {self.sop_id}/{self.step}>"

    def file_line(self, template_line: int | None) -> int | None:
        return None if template_line is None else self.first_line + template_line - 1

    def fail(
        self, detail: str, template_line: int | None, variable: str | None = None
    ) -> RenderFailure:
        return RenderFailure(
            detail,
            sop_id=self.sop_id,
            step=self.step,
            path=self.path,
            line=self.file_line(template_line) or self.first_line,
            variable=variable,
        )


def compile_template(
    source: str, *, sop_id: str, step: str, path: str | None = None, first_line: int = 1
) -> CompiledStep:
    """Compile a step's text; a syntax error raises `RenderFailure` with the file line."""
    digest = hashlib.sha256(source.encode()).hexdigest()
    return _compile(sop_id, step, path, first_line, digest, source)


@lru_cache(maxsize=512)
def _compile(
    sop_id: str, step: str, path: str | None, first_line: int, digest: str, source: str
) -> CompiledStep:
    env = environment()
    name = f"<sop {sop_id}/{step}>"
    where: dict[str, Any] = {"sop_id": sop_id, "step": step, "path": path}
    try:
        code = env.compile(source, name=name, filename=name)
    except TemplateSyntaxError as exc:
        line = first_line + (exc.lineno or 1) - 1
        prefix = "" if isinstance(exc, TemplateTextError) else "template syntax error: "
        raise RenderFailure(f"{prefix}{exc.message}", line=line, **where) from None
    except (RecursionError, SyntaxError, MemoryError):  # Python's limits on the generated code
        detail = "the template nests too deeply to compile; flatten its {% %} blocks and brackets"
        raise RenderFailure(detail, line=first_line, **where) from None
    except Exception as exc:  # e.g. a number literal of more than 4,300 digits
        detail = f"the template cannot be compiled: {str(exc).split('; use sys.')[0]}"
        raise RenderFailure(detail, line=first_line, **where) from None
    template = env.template_class.from_code(env, code, env.make_globals(None))
    return CompiledStep(sop_id, step, source, digest, path, first_line, template)


def compile_step(spec: SopSpec, step: str) -> CompiledStep:
    """The compiled template of `step` in `spec`, cached per (sop id, step, content hash)."""
    try:
        section = spec.section(step)
    except KeyError as exc:
        raise RenderFailure(str(exc.args[0]), sop_id=spec.id, step=step, path=_path(spec)) from None
    return compile_template(
        section.text, sop_id=spec.id, step=step, path=_path(spec), first_line=section.first_line
    )


def _path(spec: SopSpec) -> str | None:
    return str(spec.path) if spec.path else None


def render(compiled: CompiledStep, context: Mapping[str, Any]) -> str:
    """The step's text for one recipient; any failure is a `RenderFailure` naming SOP, step, line."""
    try:
        with render_budget():
            text = compiled.template.render(context)
    except Exception as exc:  # every template failure becomes one TemplateError
        raise _explain(compiled, exc, context) from None
    _check_characters(compiled, text)
    return tidy(text)


def _check_characters(compiled: CompiledStep, text: str) -> None:
    """A lone surrogate (from `'%c' % 55296`, say) cannot be sent; say so instead of crashing later."""
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise compiled.fail(
            f"the text would contain U+{ord(text[exc.start]):04X} (a lone surrogate), "
            "which is not a character",
            None,
        ) from None


def tidy(text: str) -> str:
    """Drop blank lines around the text and spaces at line ends."""
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _explain(compiled: CompiledStep, exc: Exception, context: Mapping[str, Any]) -> RenderFailure:
    line = _template_line(exc.__traceback__, compiled.name)
    if isinstance(exc, MissingValue):
        return _explain_missing(compiled, exc, line, context)
    if isinstance(exc, SecurityError):
        return compiled.fail(f"unsafe access blocked by the sandbox: {exc}", line)
    if isinstance(exc, EmptyValue):
        return compiled.fail(str(exc), line)
    if isinstance(exc, BudgetExceeded):
        return compiled.fail(f"render limit: {exc}", line)
    if isinstance(exc, RecursionError):
        return compiled.fail("the template calls itself too deeply", line)
    detail = str(exc)
    detail = detail if len(detail) <= 300 else detail[:300] + "…"  # e.g. a TypeError on a long list
    return compiled.fail(f"{type(exc).__name__}: {detail}", line)


def _explain_missing(
    compiled: CompiledStep, exc: MissingValue, line: int | None, context: Mapping[str, Any]
) -> RenderFailure:
    name = str(exc.name)
    if exc.owner is missing:
        available = sorted(context)
        detail = (
            f"variable `{name}` is not available in step `{compiled.step}`{_did_you_mean(name, available)}; "
            f"available: {', '.join(available)}"
        )
        return compiled.fail(detail, line, variable=name)
    expression = _expression_for(compiled.source, exc.name, line) or f"….{name}"
    parent = expression.rsplit(".", 1)[0] if "." in expression else "the value"
    if isinstance(exc.owner, Mapping):
        fields = [str(key) for key in exc.owner]
        detail = (
            f"`{expression}` does not exist{_did_you_mean(name, fields)}; "
            f"`{parent}` has: {', '.join(fields)}"
        )
    elif isinstance(exc.owner, list | tuple):
        detail = f"`{expression}` does not exist: the list has {len(exc.owner)} element(s)"
    else:
        detail = f"`{expression}` does not exist ({exc})"
    return compiled.fail(detail, line, variable=expression)


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _template_line(tb: TracebackType | None, filename: str) -> int | None:
    """The template line Jinja put in the traceback for the frame of `filename`."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


# ---------------------------------------------------------------- static views of a template


def _parse(source: str) -> nodes.Template:
    return environment().parse(source)


def used_variables(source: str) -> dict[str, int]:
    """Top-level variables a template reads, each with the template line it is first used on."""
    tree = _parse(source)
    names = find_undeclared_variables(tree)
    first: dict[str, int] = {}
    for node in tree.find_all(nodes.Name):
        if node.name in names and node.name not in first:
            first[node.name] = node.lineno
    return first


def used_paths(source: str) -> Iterator[tuple[str, int]]:
    """Dotted attribute paths a template reads (e.g. `customer.external_userid`) with their lines."""
    for node in _parse(source).find_all(nodes.Getattr):
        yield _expression(node) or f"….{node.attr}", node.lineno


def static_text(source: str) -> Iterator[tuple[int, str]]:
    """The literal text of a template (outside `{{ }}` / `{% %}`), as (template line, text) pieces."""
    for lineno, token, value in environment().lex(source):
        if token == "data":
            for offset, piece in enumerate(value.split("\n")):
                if piece:
                    yield lineno + offset, piece


def _expression(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Const):
        return repr(node.value)
    if isinstance(node, nodes.Getattr):
        base = _expression(node.node)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        base = _expression(node.node)
        key = node.arg.value
        return (
            f"{base}.{key}"
            if base and isinstance(key, str)
            else f"{base}[{key!r}]"
            if base
            else None
        )
    return None


def _expression_for(source: str, attr: Any, line: int | None) -> str | None:
    """The source expression (e.g. `d.product.nme`) that looked up `attr` on template line `line`."""
    try:
        tree = _parse(source)
    except TemplateSyntaxError:
        return None
    candidates = [
        node
        for node in tree.find_all((nodes.Getattr, nodes.Getitem))
        if (
            getattr(node, "attr", None) == attr
            or getattr(getattr(node, "arg", None), "value", None) == attr
        )
    ]
    on_line = [node for node in candidates if node.lineno == line] or candidates
    return next((e for e in map(_expression, on_line) if e), None)
