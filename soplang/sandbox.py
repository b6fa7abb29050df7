"""The sandboxed Jinja2 environment SOP text renders in, with every render held to `render_budget`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import FunctionType
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from soplang.budget import (
    HOOKS,
    bounded_concat,
    capped_range,
    check_size,
    enter_call,
    leave_call,
)
from soplang.limits import (
    INTERCEPTED_BINOPS,
    binop,
    check_call,
    check_format,
    guard_filter,
)

_HOOK_MODULE = "soplang.budget."
_SURROGATE = re.compile("[\ud800-\udfff]")


class TemplateTextError(TemplateSyntaxError):
    """Text in a template that is not text: a `\\ud800` escape makes a lone surrogate."""


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox whose loops, ranges, calls, operators, filters and output are budgeted."""

    intercepted_binops = INTERCEPTED_BINOPS
    concat = staticmethod(bounded_concat)  # type: ignore[assignment]

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = capped_range
        self.globals.pop("lipsum", None)  # lorem ipsum has no place in a message; n=10**9 hangs

    def guard_filters(self) -> None:
        """Wrap every filter (call after adding the project's own) with the budget's checks."""
        self.filters = {name: guard_filter(name, f) for name, f in self.filters.items()}

    def getattr(self, obj: Any, attribute: str) -> Any:
        """`campaign.items` reads the field `items`, never the dict method of that name."""
        if isinstance(obj, Mapping) and not attribute.startswith("_"):
            return self._field(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """`campaign['items']` too: a dict is read by its keys only."""
        if isinstance(obj, Mapping) and isinstance(argument, str) and not argument.startswith("_"):
            return self._field(obj, argument)
        return super().getitem(obj, argument)

    def _field(self, obj: Mapping[str, Any], name: str) -> Any:
        try:
            return obj[name]
        except (TypeError, LookupError):
            return self.undefined(obj=obj, name=name)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return binop(operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if type(__obj) is FunctionType and __obj in HOOKS:  # inserted by `_Budgeted`; positional
            return __obj(*args)
        args = check_call(__obj, args, kwargs)
        budget = enter_call()
        try:
            return check_size(super().call(__context, __obj, *args, **kwargs))
        finally:
            leave_call(budget)

    def wrap_str_format(self, value: Any) -> Any:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        template, is_map = value.__self__, value.__name__ == "format_map"

        def guarded(*args: Any, **kwargs: Any) -> str:
            mapping = args[0] if is_map and args else kwargs
            check_format(template, () if is_map else args, mapping)
            return wrapper(*args, **kwargs)

        return guarded

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        _Budgeted().visit(source)
        source.set_environment(self)
        return super()._generate(source, name, filename, defer_init)


def _hook(name: str, *args: nodes.Node, lineno: int) -> nodes.Call:
    function = nodes.ImportedName(_HOOK_MODULE + name, lineno=lineno)
    return nodes.Call(function, list(args), [], None, None, lineno=lineno)


class _Budgeted(NodeTransformer):
    """Rewrites a parsed template so loops, `~`, literals and static output report to the budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _hook("loop", node.iter, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _hook("joined", *node.nodes, lineno=node.lineno)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        if node.ctx != "load":  # `{% for a, b in … %}` targets stay as they are
            return self.generic_visit(node)
        return self._literal(node)

    def visit_List(self, node: nodes.List) -> nodes.Node:
        return self._literal(node)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        return self._literal(node)

    def _literal(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        return _hook("checked", node, lineno=node.lineno)

    def visit_Const(self, node: nodes.Const) -> nodes.Node:
        _check_text(node.value, node.lineno)
        return node

    def visit_TemplateData(self, node: nodes.TemplateData) -> nodes.Node:
        _check_text(node.data, node.lineno)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node | list[nodes.Node]:
        self.generic_visit(node)
        static = sum(
            len(child.data) if isinstance(child, nodes.TemplateData) else len(child.value)
            for child in node.nodes
            if isinstance(child, nodes.TemplateData)
            or (isinstance(child, nodes.Const) and isinstance(child.value, str))
        )
        if not static:
            return node
        charge = _hook("write_static", nodes.Const(static), lineno=node.lineno)
        return [nodes.ExprStmt(charge, lineno=node.lineno), node]


def _check_text(value: Any, lineno: int) -> None:
    found = _SURROGATE.search(value) if isinstance(value, str) else None
    if found:
        raise TemplateTextError(
            f"the escape for U+{ord(found.group()):04X} (a lone surrogate) is not a character; "
            "remove it or write the character itself",
            lineno,
        )
