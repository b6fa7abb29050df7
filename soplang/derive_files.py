"""sop/tiers.yaml (member tier floors) and sop/tags.yaml (automatic tag rules), read with lines."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.errors import SopDefinitionError
from models.vocab import TIERS
from soplang.file_text import read_text
from soplang.problems import ParsedSop, Problem
from soplang.safe_yaml import SopYamlLoader
from soplang.spec import did_you_mean

TIERS_FILE = "tiers.yaml"
TAGS_FILE = "tags.yaml"
MAX_YUAN = 100_000_000  # a floor above ¥100,000,000 is a typo, not a tier
_YUAN = re.compile(r"^(?:0|[1-9][0-9]*)(?:\.[0-9]{1,2})?$")


@dataclass(frozen=True)
class TierFloors:
    """Each tier's floor of rolling 12-month spend in fen, lowest first (bronze is 0)."""

    floors: tuple[tuple[str, int], ...]


class _Loader(SopYamlLoader):
    what = "the file"


class NodeReader:
    """Walks an ops file's YAML nodes, keeping each problem on its line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def add(self, node: yaml.Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(Problem(str(self.path), line, "error", message))

    def root(self, what: str, kind: str, example: str) -> yaml.MappingNode | None:
        """The file's top-level mapping; None (with the reason) when absent, unreadable or not one."""
        file = ParsedSop(path=self.path)
        text = read_text(self.path, file, what=what, kind=kind, empty_ok=True)
        self.problems.extend(file.problems)
        if text is None:
            return None
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            line = mark.line + 1 if mark else 1
            self.problems.append(
                Problem(
                    str(self.path),
                    line,
                    "error",
                    f"not valid YAML ({problem}); indent with spaces and write `{example}`",
                )
            )
            return None
        finally:
            loader.dispose()
        if root is None:
            return None
        if not isinstance(root, yaml.MappingNode):
            self.add(root, f"write one `{example}` per line")
            return None
        return root

    def pairs(self, node: yaml.MappingNode, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
        """The key/value nodes of a mapping; a key written twice is an error and only the first counts."""
        seen: dict[str, int] = {}
        found = []
        for key, value in node.value:
            text = str(key.value) if isinstance(key, yaml.ScalarNode) else ""
            if not text.strip():
                self.add(key, f"every {what} needs a name")
                continue
            if text in seen:
                self.add(key, f"{what} `{text}` is written twice (first on line {seen[text]})")
                continue
            seen[text] = key.start_mark.line + 1
            found.append((key, value))
        return found

    def scalar(self, node: yaml.Node, what: str) -> str | None:
        if isinstance(node, yaml.ScalarNode) and str(node.value).strip():
            return str(node.value).strip()
        self.add(node, f"{what} needs one value, e.g. `{what}: 2`")
        return None

    def integer(self, node: yaml.Node, what: str, low: int, high: int) -> int | None:
        text = self.scalar(node, what)
        if text is None:
            return None
        if not text.isdigit() or not low <= int(text) <= high:
            self.add(node, f"{what} must be a whole number from {low} to {high}, not `{text}`")
            return None
        return int(text)

    def yuan(self, node: yaml.Node, what: str) -> int | None:
        """An amount in yuan (up to 2 decimals, no sign) as fen."""
        text = self.scalar(node, what)
        if text is None:
            return None
        plain = text.lstrip("¥￥").replace(",", "")
        if not _YUAN.match(plain) or float(plain) > MAX_YUAN:
            self.add(
                node,
                f"{what} is an amount in yuan (元) with at most 2 decimals, e.g. `200` or "
                f"`99.5`, not `{text}`",
            )
            return None
        whole, _, cents = plain.partition(".")
        return int(whole) * 100 + int((cents + "00")[:2])


def read_tiers(path: Path) -> tuple[TierFloors | None, list[Problem]]:
    """The tier floors `path` sets (None when the file is absent or has errors) and its problems."""
    reader = NodeReader(path)
    if not path.is_file():
        return None, []
    root = reader.root("the tiers file", "a tier table", "gold: 1000")
    if root is None:
        if not reader.problems:
            reader.add(None, "the file sets no tiers; write `silver: 300`, `gold: 1000` …")
        return None, reader.problems
    order = list(TIERS)
    floors: dict[str, tuple[int, yaml.Node]] = {}
    for key, value in reader.pairs(root, "tier"):
        tier = str(key.value)
        if tier not in TIERS:
            known = ", ".join(order)
            reader.add(key, f"unknown tier `{tier}`{did_you_mean(tier, order)}; use {known}")
            continue
        fen = reader.yuan(value, tier)
        if fen is not None:
            floors[tier] = (fen, key)
    if "bronze" in floors and floors["bronze"][0] != 0:
        reader.add(floors["bronze"][1], "bronze is every customer's tier: its floor must be 0")
    previous = ("bronze", 0)
    for tier in order[1:]:
        if tier not in floors:
            if not reader.problems:
                reader.add(root, f"no floor for `{tier}`; give every tier one, e.g. `{tier}: 1000`")
            continue
        fen, key = floors[tier]
        if fen <= previous[1]:
            reader.add(
                key,
                f"{tier}'s floor ({fen / 100:g} 元) must be above {previous[0]}'s "
                f"({previous[1] / 100:g} 元): tiers rise bronze < silver < gold < platinum",
            )
        previous = (tier, fen)
    if reader.problems:
        return None, reader.problems
    return TierFloors(tuple([("bronze", 0)] + [(t, floors[t][0]) for t in order[1:]])), []


def raise_problems(problems: list[Problem], what: str) -> None:
    errors = [str(p) for p in problems if p.is_error]
    if errors:
        raise SopDefinitionError(
            f"{what} cannot be used; fix it (`sopflow lint` checks it):\n" + "\n".join(errors),
            problems=errors,
        )


def load_tiers(sop_dir: Path) -> TierFloors | None:
    """The tier floors of the SOP folder's tiers.yaml (None when absent); errors raise, by line."""
    floors, problems = read_tiers(sop_dir / TIERS_FILE)
    raise_problems(problems, TIERS_FILE)
    return floors
