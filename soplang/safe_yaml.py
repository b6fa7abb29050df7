"""The YAML loader for SOP front matter: friendly scalars, and limits that refuse hostile YAML early."""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import Node

# Front matter is a few dozen keys; these limits are far above any real SOP and far below harm.
MAX_DEPTH = 32  # nested lists / maps
MAX_ALIASES = 64  # `*name` references
MAX_NODES = 10_000  # values once every alias is expanded ("billion laughs" stops here)

_SURROGATE = re.compile("[\ud800-\udfff]")


class YamlLimitError(yaml.MarkedYAMLError):
    """Front matter the loader refuses before building it: too deep, too many aliases, bad text."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(problem=message, problem_mark=mark)


class SopYamlLoader(yaml.SafeLoader):
    """YAML 1.2-ish scalars (`on`/`yes` stay text, `10:00` is not 600) with compose-time limits."""

    what = "front matter"  # what the limits' messages call the text

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._nodes = 0  # values composed so far, each alias counted as the size it expands to
        self._sizes: dict[str, int] = {}  # anchor → expanded size of its node
        self._open: set[str] = set()  # anchors whose node is still being composed

    def scan_flow_scalar_non_spaces(self, double: bool, start_mark: Any) -> Any:
        """An escape past U+10FFFF (`"\\UFFFFFFFF"`) is refused in our words: PyYAML lets
        `chr()` fail, and Python words that differently from one version to the next."""
        try:
            return super().scan_flow_scalar_non_spaces(double, start_mark)
        except (ValueError, OverflowError):  # only `\\U` has digits enough to pass U+10FFFF
            raise YamlLimitError(
                f"the escape `\\U{self.prefix(8)}` is not a character "
                "(Unicode ends at U+10FFFF); remove it or write the character itself",
                self.get_mark(),
            ) from None

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            return self._compose_alias(event, parent, index)
        if self._depth >= MAX_DEPTH:
            raise YamlLimitError(
                f"{self.what} nests more than {MAX_DEPTH} levels deep; it needs only a few",
                event.start_mark,
            )
        anchor = event.anchor
        if anchor is not None:
            self._open.add(anchor)
        before = self._nodes
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open.discard(anchor)
        if isinstance(node, yaml.ScalarNode):
            _check_text(node)
        self._charge(1, event.start_mark)
        if anchor is not None:
            self._sizes[anchor] = self._nodes - before
        return node

    def _compose_alias(self, event: yaml.AliasEvent, parent: Node | None, index: Any) -> Node:
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise YamlLimitError(
                f"{self.what} uses more than {MAX_ALIASES} aliases (`*name`); write the values out",
                event.start_mark,
            )
        if event.anchor in self._open:
            raise YamlLimitError(
                f"alias `*{event.anchor}` refers to the value it is inside of", event.start_mark
            )
        node = super().compose_node(parent, index)
        self._charge(self._sizes.get(str(event.anchor), 1), event.start_mark)
        return node

    def _charge(self, size: int, mark: Any) -> None:
        self._nodes += size
        if self._nodes > MAX_NODES:
            how = " once its aliases (`*name`) are expanded" if self._aliases else ""
            raise YamlLimitError(f"{self.what} has more than {MAX_NODES:,} values{how}", mark)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        """Values PyYAML cannot build (a bad `!!timestamp`, `!!int`) become errors on their line."""
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, OverflowError) as exc:
            reason = str(exc).split("; use sys.")[0]  # Python's hint is not for SOP writers
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value: {reason}", node.start_mark
            ) from None


def _check_text(node: yaml.ScalarNode) -> None:
    """A `\\ud800` escape in a quoted string makes a lone surrogate: not a character, refused here."""
    found = _SURROGATE.search(node.value)
    if found:
        raise YamlLimitError(
            f"the escape for U+{ord(found.group()):04X} (a lone surrogate) is not a character; "
            "remove it or write the character itself",
            node.start_mark,
        )


_DROPPED_TAGS = {
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
}
SopYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _DROPPED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SopYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
SopYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789")
)
SopYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)?\.[0-9]+(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)
