"""The one Jinja2 environment SOP text is compiled in: sandboxed, budgeted, strict, with the ops filters."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import StrictUndefined, UndefinedError
from jinja2.runtime import missing

from soplang.budget import write
from soplang.filters import FILTERS
from soplang.sandbox import BudgetedEnvironment


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
