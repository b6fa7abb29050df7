"""Check, without rendering, every field a template reads against the sample values of its variables.

Rendering the sample stops at the first missing field; this walk reports each one on its own line.
A value whose fields the reference does not describe (a loop counter, a macro argument, a number)
is not checked here: the sample render still catches what it can.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import nodes

from soplang.field_words import missing_element_field, missing_field
from soplang.template_scan import expression_text

UNKNOWN: Any = object()  # a value whose fields are not known

_ELEMENT_FILTERS = frozenset({"first", "last", "random"})
_SAME_LIST_FILTERS = frozenset(
    {"sort", "reverse", "list", "unique", "select", "reject", "selectattr", "rejectattr"}
)
_LENIENT_FILTERS = frozenset({"default", "d"})  # `x.nope | default('…')` is fine at render too
_LENIENT_TESTS = frozenset({"defined", "undefined"})  # so is `x.nope is defined`
_POSITIONAL_ATTRIBUTE = frozenset({"selectattr", "rejectattr", "groupby"})
_ATTRIBUTE_KEYWORD = frozenset({"map", "sum", "sort", "unique", "min", "max", "groupby"})

Scope = dict[str, Any]


def field_problems(
    tree: nodes.Template, samples: Mapping[str, Any], variables: list[str]
) -> list[tuple[int, str]]:
    """(template line, message) for each field read that its value does not have, by line."""
    checker = _Checker(samples, variables)
    checker.block(tree.body, {})
    return sorted(checker.found, key=lambda found: found[0])


def _element(value: Any) -> Any:
    return value[0] if isinstance(value, list | tuple) and value else UNKNOWN


class _Checker:
    def __init__(self, samples: Mapping[str, Any], variables: list[str]) -> None:
        self.samples = samples
        self.variables = variables
        self.found: dict[tuple[int, str], None] = {}

    def report(self, node: nodes.Node, message: str | None) -> None:
        if message:
            self.found.setdefault((node.lineno, message), None)

    # ------------------------------------------------------------ statements

    def block(self, body: list[nodes.Node], scope: Scope) -> None:
        for node in body:
            self.statement(node, scope)

    def statement(self, node: nodes.Node, scope: Scope) -> None:
        if isinstance(node, nodes.For):
            items = self.expr(node.iter, scope)
            inner = {**scope, "loop": UNKNOWN}
            self.bind(node.target, _element(items), inner)
            if node.test is not None:
                self.expr(node.test, inner)
            self.block(node.body, inner)
            self.block(node.else_, scope)
        elif isinstance(node, nodes.Assign):
            self.bind(node.target, self.expr(node.node, scope), scope)
        elif isinstance(node, nodes.AssignBlock):
            self.block(node.body, dict(scope))
            self.bind(node.target, UNKNOWN, scope)
        elif isinstance(node, nodes.With):
            inner = dict(scope)
            for target, value in zip(node.targets, node.values, strict=False):
                self.bind(target, self.expr(value, scope), inner)
            self.block(node.body, inner)
        elif isinstance(node, nodes.Macro | nodes.CallBlock):
            if isinstance(node, nodes.CallBlock):
                self.expr(node.call, scope)
            for default in node.defaults:
                self.expr(default, scope)
            inner = {**scope, "caller": UNKNOWN, "varargs": UNKNOWN, "kwargs": UNKNOWN}
            for arg in node.args:
                self.bind(arg, UNKNOWN, inner)
            self.block(node.body, inner)
            if isinstance(node, nodes.Macro):
                scope[node.name] = UNKNOWN
        else:
            self.children(node, scope)

    def children(self, node: nodes.Node, scope: Scope) -> None:
        for child in node.iter_child_nodes():
            if isinstance(child, nodes.Expr):
                self.expr(child, scope)
            else:
                self.statement(child, scope)

    def bind(self, target: nodes.Node, value: Any, scope: Scope) -> None:
        if isinstance(target, nodes.Name):
            scope[target.name] = value
        elif isinstance(target, nodes.Tuple):
            for item in target.items:
                self.bind(item, UNKNOWN, scope)

    # ------------------------------------------------------------ expressions

    def expr(self, node: nodes.Node, scope: Scope, lenient: bool = False) -> Any:
        """The sample value of `node` (UNKNOWN when not known), reporting missing fields on the way."""
        if isinstance(node, nodes.Name):
            return scope[node.name] if node.name in scope else self.samples.get(node.name, UNKNOWN)
        if isinstance(node, nodes.Getattr):
            return self.field(node, self.expr(node.node, scope), node.attr, lenient)
        if isinstance(node, nodes.Getitem):
            return self.item(node, scope, lenient)
        if isinstance(node, nodes.Filter):
            return self.filter(node, scope)
        if isinstance(node, nodes.Test) and node.name in _LENIENT_TESTS:
            self.expr(node.node, scope, lenient=True)
            return UNKNOWN
        self.children(node, scope)
        return UNKNOWN

    def item(self, node: nodes.Getitem, scope: Scope, lenient: bool) -> Any:
        base = self.expr(node.node, scope)
        if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            return self.field(node, base, node.arg.value, lenient)
        self.expr(node.arg, scope)
        if isinstance(node.arg, nodes.Slice):
            return base if isinstance(base, list | tuple) else UNKNOWN
        return _element(base)

    def field(self, node: nodes.Node, base: Any, name: str, lenient: bool) -> Any:
        if isinstance(base, Mapping) and name in base:
            return base[name]
        if lenient or name.startswith("_"):  # `_` names are refused as unsafe elsewhere
            return UNKNOWN
        if isinstance(base, Mapping) or (
            isinstance(base, list | tuple) and not hasattr(base, name)
        ):
            self.report(node, missing_field(expression_text(node), name, base, self.variables))
        return UNKNOWN

    def filter(self, node: nodes.Filter, scope: Scope) -> Any:
        base = UNKNOWN
        if node.node is not None:
            base = self.expr(node.node, scope, lenient=node.name in _LENIENT_FILTERS)
        for arg in (*node.args, *(kw.value for kw in node.kwargs), node.dyn_args, node.dyn_kwargs):
            if arg is not None:
                self.expr(arg, scope)
        element = _element(base)
        path = self.attribute_path(node)
        picked = UNKNOWN
        if path is not None and isinstance(element, Mapping):
            picked = self.follow(node, element, path)
        if node.name in _ELEMENT_FILTERS:
            return element
        if node.name in _SAME_LIST_FILTERS or node.name in _LENIENT_FILTERS:
            return base
        if node.name == "map" and picked is not UNKNOWN:
            return [picked]
        return UNKNOWN

    @staticmethod
    def attribute_path(node: nodes.Filter) -> str | None:
        """The `attribute` a filter reads from each element (`map(attribute='name')`, `selectattr('x')`)."""
        value: nodes.Node | None = None
        if node.name in _POSITIONAL_ATTRIBUTE and node.args:
            value = node.args[0]
        if node.name in _ATTRIBUTE_KEYWORD:
            value = next((kw.value for kw in node.kwargs if kw.key == "attribute"), value)
        if isinstance(value, nodes.Const) and isinstance(value.value, str):
            return value.value
        return None

    @staticmethod
    def call_text(node: nodes.Filter) -> str:
        """`map(attribute='prise')` or `selectattr('stok')`, as the author wrote it."""
        path = _Checker.attribute_path(node)
        first = node.args[0] if node.args else None
        if (
            node.name in _POSITIONAL_ATTRIBUTE
            and isinstance(first, nodes.Const)
            and first.value == path
        ):
            return f"{node.name}('{path}')"
        return f"{node.name}(attribute='{path}')"

    def follow(self, node: nodes.Filter, element: Mapping[str, Any], path: str) -> Any:
        value: Any = element
        for part in path.split("."):
            if not isinstance(value, Mapping) or part.isdigit() or part.startswith("_"):
                return UNKNOWN
            if part not in value:
                base = expression_text(node.node) if node.node is not None else None
                self.report(node, missing_element_field(base, self.call_text(node), part, value))
                return UNKNOWN
            value = value[part]
        return value
