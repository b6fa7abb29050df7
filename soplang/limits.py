"""Size rules for what can make a big value from a small one: operators, formatting, text methods, filters."""

from __future__ import annotations

import inspect
import operator
import re
import string
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any

from soplang.budget import (
    MAX_INT_BITS,
    MAX_SIZE,
    BudgetExceeded,
    check_size,
    expect,
    size_of,
    tick,
)

# ---------------------------------------------------------------- operators


def _unit(value: Any) -> str:
    return "characters" if isinstance(value, str | bytes) else "items"


def _kind(value: Any) -> str:
    return "a text" if isinstance(value, str | bytes) else "a list"


def _shown(value: Any) -> str:
    if isinstance(value, str | bytes):
        text = repr(value[:8])
        return text[:-1] + "…" + text[-1] if len(value) > 8 else text
    return "[…]" if isinstance(value, list) else "(…)" if isinstance(value, tuple) else repr(value)


def _bounded_int(value: Any, what: str) -> int:
    if isinstance(value, int) and value > MAX_SIZE:
        raise BudgetExceeded(f"{what} {value:,} is over the limit of {MAX_SIZE:,}")
    return value if isinstance(value, int) else 0


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "*": operator.mul,
    "**": operator.pow,
    "+": operator.add,
    "%": operator.mod,
}
INTERCEPTED_BINOPS = frozenset(_OPERATORS)


def binop(symbol: str, left: Any, right: Any) -> Any:
    """`left symbol right` after checking that its result stays within the limits."""
    tick()
    if symbol == "*":
        _check_repeat(left, right)
        _check_repeat(right, left)
    elif symbol == "**":
        _check_power(left, right)
    elif symbol == "+" and isinstance(left, str | bytes | list | tuple):
        expect(size_of(left) + size_of(right), _unit(left), f"`+` would make {_kind(left)}")
    elif symbol == "%" and isinstance(left, str | bytes):
        _check_percent(left, right)
    return check_size(_OPERATORS[symbol](left, right))


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


def _check_repeat(sequence: Any, count: Any) -> None:
    if _is_int(sequence) and _is_int(count):
        if sequence.bit_length() + count.bit_length() > MAX_INT_BITS:
            raise BudgetExceeded(f"`*` would make a number of more than {MAX_INT_BITS:,} bits")
    elif isinstance(sequence, str | bytes | list | tuple) and _is_int(count) and count > 0:
        what = f"`{_shown(sequence)} * {count}` would make {_kind(sequence)}"
        expect(size_of(sequence) * count, _unit(sequence), what)


def _check_power(base: Any, exponent: Any) -> None:
    if _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1:
        if exponent * base.bit_length() > MAX_INT_BITS:
            shown = f"{base} ** {exponent}" if base.bit_length() <= 64 else f"… ** {exponent}"
            raise BudgetExceeded(f"`{shown}` would be a number of more than {MAX_INT_BITS:,} bits")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent(template: str | bytes, args: Any) -> None:
    """`'%10s' % x`: the widths, precisions and values it would write stay within the limits."""
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    specs = _PERCENT_SPEC.findall(text)
    numbers = [_spec_number(part) for spec in specs for part in spec if part and part != "*"]
    if any(part == "*" for spec in specs for part in spec):
        for arg in args if isinstance(args, tuple) else (args,):
            _bounded_int(arg, "a `*` width of")
    estimate = len(text) + sum(numbers) + len(specs) * size_of(args)
    expect(estimate, "characters", "`%` formatting would make a text")


def _spec_number(digits: str) -> int:
    if len(digits) > len(str(MAX_SIZE)) or int(digits) > MAX_SIZE:
        raise BudgetExceeded(f"a width or precision of {digits[:12]}… is over {MAX_SIZE:,}")
    return int(digits)


def check_format(template: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """`'{:>10}'.format(x)`: the same limits as for `%` formatting."""
    fields = 0
    numbers = 0
    for _literal, field, spec, _conversion in string.Formatter().parse(template):
        if field is None:
            continue
        fields += 1
        if spec and "{" in spec:
            raise BudgetExceeded("a width given by another `{…}` field is not supported")
        numbers += sum(_spec_number(digits) for digits in re.findall(r"\d+", spec or ""))
    estimate = len(template) + numbers + fields * size_of((args, dict(kwargs)))
    expect(estimate, "characters", "`.format()` would make a text")


# ---------------------------------------------------------------- calls


_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})


def check_call(function: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Limits on text methods that can make a long text from a short one; returns the args to use."""
    owner = getattr(function, "__self__", None)
    name = getattr(function, "__name__", "")
    if not isinstance(owner, str | bytes) or not args:
        return args
    what = f"`.{name}()` would make a text"
    if name in _WIDTH_METHODS:
        _bounded_int(args[0], f"`.{name}()` width")
    elif name == "expandtabs" and isinstance(args[0], int):
        tabs = owner.count(b"\t" if isinstance(owner, bytes) else "\t")  # type: ignore[arg-type]
        expect(len(owner) + tabs * args[0], "characters", what)
    elif name == "replace" and len(args) >= 2:
        expect(_replaced_size(owner, args[0], args[1], args[2:]), "characters", what)
    elif name == "join":
        items = list(args[0])
        expect(size_of(items) + len(owner) * len(items), "characters", what)
        return (items, *args[1:])
    elif name == "translate" and isinstance(args[0], Mapping):
        longest = max((size_of(v) for v in args[0].values()), default=1)
        expect(len(owner) * max(longest, 1), "characters", what)
    return args


def _replaced_size(text: Any, old: Any, new: Any, rest: tuple[Any, ...]) -> int:
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return len(text)
    found = len(text) + 1 if not old else text.count(old)
    count = rest[0] if rest and isinstance(rest[0], int) and rest[0] >= 0 else found
    return len(text) + min(found, count) * (len(new) - len(old))


# ---------------------------------------------------------------- filters


def _join_rule(bound: Mapping[str, Any]) -> dict[str, Any]:
    items = list(bound["value"])
    separator = size_of(bound.get("d", ""))
    expect(size_of(items) + separator * len(items), "characters", "`join` would make a text")
    return {"value": items}


def _fill_rule(count_name: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def rule(bound: Mapping[str, Any]) -> dict[str, Any]:
        count = _bounded_int(bound.get(count_name, 0), f"`{count_name}` of")
        expect(count * size_of(bound.get("fill_with")), "items", "the filled list")
        return {}

    return rule


def _text_rule(estimate: Callable[[Mapping[str, Any]], int], name: str) -> Any:
    def rule(bound: Mapping[str, Any]) -> dict[str, Any]:
        expect(estimate(bound), "characters", f"`{name}` would make a text")
        return {}

    return rule


def _indent_size(bound: Mapping[str, Any]) -> int:
    text, width = str(bound["s"]), bound.get("width", 4)
    pad = _bounded_int(width, "an indent of") if isinstance(width, int) else size_of(width)
    return len(text) + (text.count("\n") + 1) * pad


def _wordwrap_size(bound: Mapping[str, Any]) -> int:
    text, width = str(bound["s"]), max(_bounded_int(bound.get("width", 79), "a width of"), 1)
    return len(text) + (len(text) // width + 1) * (size_of(bound.get("wrapstring")) + 1)


def _format_size(bound: Mapping[str, Any]) -> int:
    _check_percent(str(bound["value"]), bound.get("args") or bound.get("kwargs") or ())
    return 0


def _sum_rule(bound: Mapping[str, Any]) -> dict[str, Any]:
    """`sum(start=[])` copies the growing list at every item: refuse when that copying adds up."""
    if not isinstance(bound.get("start"), list | tuple | str):
        return {}
    items = list(bound["iterable"])
    expect(len(items) * size_of(items), "items", "`sum` of lists would copy a total")
    return {"iterable": items}


_FILTER_RULES: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "join": _join_rule,
    "sum": _sum_rule,
    "batch": _fill_rule("linecount"),
    "slice": _fill_rule("slices"),
    "center": _text_rule(lambda b: _bounded_int(b.get("width", 80), "a width of"), "center"),
    "indent": _text_rule(_indent_size, "indent"),
    "wordwrap": _text_rule(_wordwrap_size, "wordwrap"),
    "replace": _text_rule(
        lambda b: _replaced_size(str(b["s"]), b["old"], b["new"], (b.get("count"),)), "replace"
    ),
    "format": _text_rule(_format_size, "format"),
}


def guard_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """The filter with a step counted, its size rule (if any) applied, and its result size checked."""
    rule = _FILTER_RULES.get(name)
    signature = inspect.signature(function) if rule else None

    @wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        tick()
        if rule is not None and signature is not None:
            bound = signature.bind(*args, **kwargs)
            changes = rule(bound.arguments)
            if changes:
                bound.arguments.update(changes)
                args, kwargs = bound.args, bound.kwargs
        return check_size(function(*args, **kwargs))

    return guarded
