"""What one render may use (steps, loop turns, call depth, value and output sizes, time) and its hooks."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jinja2.runtime import Namespace

MAX_SECONDS = 1.0  # wall-clock time of one render
MAX_STEPS = 100_000  # calls, filters, operators and outputs in one render
MAX_LOOP_TURNS = 10_000  # `{% for %}` turns in one render, all loops together
MAX_RANGE = 10_000  # numbers in one `range(…)`
MAX_CALL_DEPTH = 50  # macros calling macros
MAX_SIZE = 100_000  # characters of one text, or characters and items of one (nested) list
MAX_OUTPUT = 100_000  # characters one render writes, all outputs together
MAX_INT_BITS = 4_096  # a number of about 1,200 digits
_CLOCK_EVERY = 64  # steps between two looks at the clock


class BudgetExceeded(Exception):
    """A template asked for more than one render may use; the message says which limit."""


@dataclass
class RenderBudget:
    """The running totals of one render."""

    deadline: float
    steps: int = 0
    loop_turns: int = 0
    depth: int = 0
    output: int = 0


_current: ContextVar[RenderBudget | None] = ContextVar("sop_render_budget", default=None)


@contextmanager
def render_budget() -> Iterator[RenderBudget]:
    """A fresh budget for the render inside the `with` block (per thread and task)."""
    budget = RenderBudget(deadline=time.perf_counter() + MAX_SECONDS)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def tick() -> RenderBudget | None:
    """One step of the current render; outside a render (compiling) only sizes are limited."""
    budget = _current.get()
    if budget is not None:
        budget.steps += 1
        if budget.steps > MAX_STEPS:
            raise BudgetExceeded(
                f"the template does more than {MAX_STEPS:,} steps (a macro calling itself?)"
            )
        if not budget.steps % _CLOCK_EVERY and time.perf_counter() > budget.deadline:
            raise BudgetExceeded(f"rendering took longer than {MAX_SECONDS:g} s; simplify the text")
    return budget


def enter_call() -> RenderBudget | None:
    """A step one call deeper; pair with `leave_call`. Over MAX_CALL_DEPTH is refused."""
    budget = tick()
    if budget is not None:
        budget.depth += 1
        if budget.depth > MAX_CALL_DEPTH:
            budget.depth -= 1
            raise BudgetExceeded(
                f"calls nest more than {MAX_CALL_DEPTH} deep (a macro calling itself?)"
            )
    return budget


def leave_call(budget: RenderBudget | None) -> None:
    if budget is not None:
        budget.depth -= 1


# ---------------------------------------------------------------- sizes

_TEXTS = (str, bytes)
_CONTAINERS = (list, tuple, Mapping, set, frozenset, Namespace)
_PLAIN = frozenset({int, float, bool, type(None), Decimal, dt.date, dt.datetime, dt.time})


def size_of(value: Any, limit: int = MAX_SIZE) -> int:
    """Characters of texts plus items of lists and maps in `value`, nested ones included.

    Shared and repeated parts count each time they appear, as they would when printed; counting
    stops past `limit`, so a huge or cyclic value costs no more than `limit` steps.
    """
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes | range):
            total += len(item)
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item)
            if total <= limit:
                stack.extend(item)
        elif isinstance(item, Mapping):
            total += len(item)
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, Namespace):
            total += 1
            stack.append(getattr(item, "_Namespace__attrs", {}))  # its attributes live there
    return total


def check_size(value: Any) -> Any:
    """`value` itself, or BudgetExceeded when it is bigger than MAX_SIZE."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, _TEXTS):
        if len(value) > MAX_SIZE:
            expect(len(value), "characters", "the template makes a text")
    elif isinstance(value, _CONTAINERS) and size_of(value) > MAX_SIZE:  # counting stops early
        raise BudgetExceeded(
            f"the template makes a value of more than {MAX_SIZE:,} characters and items"
        )
    return value


def expect(estimate: int, unit: str, what: str) -> None:
    """BudgetExceeded saying "{what} of {estimate} {unit}" when `estimate` is over MAX_SIZE."""
    if estimate > MAX_SIZE:
        amount = f"{estimate:,}" if estimate <= 10**15 else f"about 10**{len(str(estimate)) - 1}"
        raise BudgetExceeded(f"{what} of {amount} {unit}; the limit is {MAX_SIZE:,}")


# ---------------------------------------------------------------- hooks the compiled template calls


def capped_range(*args: int) -> range:
    """`range(…)` of at most MAX_RANGE numbers."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise BudgetExceeded(
            f"`range` of {len(numbers):,} numbers is over the limit of {MAX_RANGE:,}"
        )
    return numbers


def loop(iterable: Iterable[Any]) -> Iterator[Any]:
    """A `{% for %}` loop's items, each turn counted against the render's budget."""
    for item in iterable:
        budget = tick()
        if budget is not None:
            budget.loop_turns += 1
            if budget.loop_turns > MAX_LOOP_TURNS:
                raise BudgetExceeded(
                    f"loops turn more than {MAX_LOOP_TURNS:,} times in one message "
                    "(nested loops over large ranges?)"
                )
        yield item


def joined(*parts: Any) -> str:
    """`a ~ b ~ c`, refused before joining when the text would be too long."""
    texts = [str(check_size(part)) for part in parts]
    expect(sum(map(len, texts)), "characters", "`~` would make a text")
    return "".join(texts)


def checked(value: Any) -> Any:
    """A list, tuple or map literal, refused when it holds too much once nested values count."""
    tick()
    return check_size(value)


def write(value: Any) -> str:
    """One `{{ … }}` output as text, charged to the render's output budget."""
    text = value if type(value) is str else str(check_size(value))
    if len(text) > MAX_SIZE:
        expect(len(text), "characters", "the template makes a text")
    write_static(len(text))
    return text


def write_static(length: int) -> None:
    """Static text of `length` characters charged to the render's output budget."""
    budget = tick()
    if budget is not None:
        budget.output += length
        if budget.output > MAX_OUTPUT:
            raise BudgetExceeded(f"the message is longer than {MAX_OUTPUT:,} characters")


def bounded_concat(pieces: Iterable[str]) -> str:
    """`"".join(pieces)` that refuses to build a text longer than MAX_OUTPUT."""
    parts = list(pieces)
    if sum(map(len, parts)) > MAX_OUTPUT:
        raise BudgetExceeded(f"the message is longer than {MAX_OUTPUT:,} characters")
    return "".join(parts)


HOOKS = frozenset({loop, joined, checked, write_static})  # called with no sandbox checks
