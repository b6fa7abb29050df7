"""What a template reads and says without rendering it: its variables, attribute paths and literal text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.meta import find_undeclared_variables

from soplang.environment import environment


def _parse(source: str | nodes.Template) -> nodes.Template:
    return source if isinstance(source, nodes.Template) else environment().parse(source)


def used_variables(source: str | nodes.Template) -> dict[str, int]:
    """Top-level variables a template reads, each with the template line it is first used on."""
    first: dict[str, int] = {}
    for name, line in variable_uses(source):
        first.setdefault(name, line)
    return first


def variable_uses(source: str | nodes.Template) -> list[tuple[str, int]]:
    """Every (top-level variable, template line) a template reads, once per line, in order."""
    tree = _parse(source)
    names = find_undeclared_variables(tree)
    uses = {
        (node.name, node.lineno): None
        for node in tree.find_all(nodes.Name)
        if node.name in names and node.ctx == "load"
    }
    return sorted(uses, key=lambda use: use[1])


def used_paths(source: str | nodes.Template) -> Iterator[tuple[str, int]]:
    """Dotted attribute paths a template reads (e.g. `customer.external_userid`) with their lines."""
    for node in _parse(source).find_all(nodes.Getattr):
        yield expression_text(node) or f"….{node.attr}", node.lineno


def static_text(source: str) -> Iterator[tuple[int, str]]:
    """The literal text of a template (outside `{{ }}` / `{% %}`), as (template line, text) pieces."""
    for lineno, token, value in environment().lex(source):
        if token == "data":
            for offset, piece in enumerate(value.split("\n")):
                if piece:
                    yield lineno + offset, piece


def expression_text(node: nodes.Node) -> str | None:
    """The source text of a name and its `.field` / `['key']` / `[0]` lookups, e.g. `d.product.nme`."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Const):
        return repr(node.value)
    if isinstance(node, nodes.Getattr):
        base = expression_text(node.node)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        base = expression_text(node.node)
        key = node.arg.value
        return (
            f"{base}.{key}"
            if base and isinstance(key, str)
            else f"{base}[{key!r}]"
            if base
            else None
        )
    return None


def expression_for(source: str, attr: Any, line: int | None) -> str | None:
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
    return next((e for e in map(expression_text, on_line) if e), None)
