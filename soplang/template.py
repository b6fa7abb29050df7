"""Compile and render SOP steps: the one place SOP text becomes a message, failures named by file line."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.runtime import missing

from core.errors import TemplateError
from soplang.budget import BudgetExceeded, render_budget
from soplang.environment import EmptyValue, MissingValue, environment
from soplang.field_words import missing_field
from soplang.sandbox import TemplateTextError
from soplang.spec import SopSpec, did_you_mean
from soplang.template_scan import expression_for

if TYPE_CHECKING:
    from jinja2 import Template


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
            f"variable `{name}` is not available in step `{compiled.step}`{did_you_mean(name, available)}; "
            f"available: {', '.join(available)}"
        )
        return compiled.fail(detail, line, variable=name)
    expression = expression_for(compiled.source, exc.name, line) or f"….{name}"
    explained = missing_field(expression, exc.name, exc.owner, context)
    return compiled.fail(
        explained or f"`{expression}` does not exist ({exc})", line, variable=expression
    )


def _template_line(tb: TracebackType | None, filename: str) -> int | None:
    """The template line Jinja put in the traceback for the frame of `filename`."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
