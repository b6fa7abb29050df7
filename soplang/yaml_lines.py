"""Parse front matter YAML, recording the file line of every key, and explain YAML errors plainly."""

from __future__ import annotations

import re
from typing import Any

import yaml

from soplang.problems import ParsedSop
from soplang.safe_yaml import SopYamlLoader


def yaml_with_lines(text: str, first_line: int, parsed: ParsedSop) -> Any:
    """Parse YAML text that starts on file line `first_line`, recording each key's line."""
    loader = SopYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _record_lines(node, (), first_line, parsed)
        return loader.construct_document(node)
    except (ValueError, OverflowError) as exc:  # PyYAML's scanner on e.g. "\UFFFFFFFF"
        mark = yaml.Mark("front matter", 0, loader.line, loader.column, None, None)
        problem = f"cannot read this value ({exc})"
        raise yaml.constructor.ConstructorError(problem=problem, problem_mark=mark) from None
    finally:
        loader.dispose()


def _record_lines(node: yaml.Node, path: tuple[str, ...], offset: int, parsed: ParsedSop) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + offset
            dotted = ".".join((*path, key))
            if key in seen:
                parsed.add(
                    line, f"`{dotted}` is written twice (first on line {seen[key]}); keep one"
                )
            seen[key] = line
            parsed.lines[dotted] = line
            _record_lines(value_node, (*path, key), offset, parsed)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            dotted = ".".join((*path, str(index)))
            parsed.lines[dotted] = item.start_mark.line + offset
            _record_lines(item, (*path, str(index)), offset, parsed)


_TOP_LEVEL = re.compile(r"^([A-Za-z_][\w-]*)[ \t]*:[ \t]*(.*?)[ \t]*$")


def top_level_scalars(text: str) -> dict[str, str]:
    """`key: value` lines at the left margin of YAML that did not parse, read one line at a time.

    Enough to tell the kind, channel and event of a file whose YAML is broken elsewhere.
    """
    found: dict[str, str] = {}
    for line in text.split("\n"):
        match = _TOP_LEVEL.match(line)
        if match:
            value = re.sub(r"\s+#.*$", "", match[2]).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            found.setdefault(match[1], value)
    return found


def yaml_error(exc: yaml.YAMLError, first_line: int, text: str) -> tuple[int, str]:
    """The file line of a YAML error and a message with a hint at the usual cause."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + first_line if mark else first_line
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    message = f"front matter is not valid YAML: {context + ', ' if context else ''}{problem}"
    source_lines = text.splitlines()
    offending = (
        source_lines[line - first_line] if 0 <= line - first_line < len(source_lines) else ""
    )
    if isinstance(exc, yaml.constructor.ConstructorError):
        pass  # the value itself is wrong; the hints below are about YAML syntax
    elif "\t" in problem or "\t" in offending:
        message += "; indent with spaces, not tabs"
    elif "cron" in offending or "alias" in problem or "*" in offending:
        message += '; quote values that start with * or contain `: `, e.g. cron: "30 8 * * *"'
    elif ":" in problem or "mapping" in problem:
        message += "; check the indentation and that each line is `key: value`"
    return line, message
