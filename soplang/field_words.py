"""Operator words for a field a template reads that its value does not have, shared by lint and render."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from soplang.context import VARIABLES
from soplang.spec import did_you_mean

_DOCS = {variable.name: variable.doc for variable in VARIABLES}


def _parent(expression: str) -> str:
    return expression.rsplit(".", 1)[0] if "." in expression else "the value"


def missing_field(
    expression: str | None, name: Any, owner: Any, variables: Iterable[str]
) -> str | None:
    """Why `expression` (which reads `name` on `owner`) fails, or None when `owner` is not a dict or list.

    `variables` are the step's top-level variables: `campaign.items` most likely means the
    variable `items`, so the message says so.
    """
    expression = expression or f"….{name}"
    parent = _parent(expression)
    if isinstance(owner, Mapping):
        fields = [str(key) for key in owner]
        has = f"`{parent}` has: {', '.join(fields)}"
        if isinstance(name, str) and name in set(variables) and name not in fields:
            what = f" ({_DOCS[name]})" if name in _DOCS else ""
            return (
                f"`{parent}` has no field `{name}`; did you mean `{name}`? It is a variable of "
                f"its own{what}: write `{name}`, not `{parent}.{name}`; {has}"
            )
        return f"`{expression}` does not exist{did_you_mean(str(name), fields)}; {has}"
    if isinstance(owner, list | tuple):
        if not isinstance(name, str):
            return f"`{expression}` does not exist: the list has {len(owner)} element(s)"
        return (
            f"`{expression}` does not exist: `{parent}` is a list ({len(owner)} element(s)), "
            f"so `{name}` is a field of each element; use it inside "
            f"`{{% for x in {parent} %}}` … `{{{{ x.{name} }}}}`"
        )
    return None


def missing_element_field(expression: str | None, call: str, name: str, element: Any) -> str:
    """A filter such as `map(attribute='prise')` names a field the list's elements do not have."""
    fields = [str(key) for key in element]
    where = f"`{expression}`" if expression else "the list"
    shown = f"{expression} | {call}" if expression else call
    return (
        f"`{shown}`: the elements of {where} have no field `{name}`"
        f"{did_you_mean(name, fields)}; each has: {', '.join(fields)}"
    )
