"""The review's targets (sop/targets.yaml, edited by ops): each KPI with `>= 3%` or `<= 1%`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.errors import TargetsError
from soplang.spec import did_you_mean

TARGETS_FILE = "targets.yaml"
RULE = re.compile(r"^\s*(>=|<=|≥|≤)\s*(-?\d+(?:\.\d+)?)\s*(%?)\s*$")
COMPARISONS = {"≥": ">=", "≤": "<="}


@dataclass(frozen=True)
class Target:
    kpi: str
    comparison: str  # ">=" or "<="
    value: float  # rates as fractions: "3%" is 0.03
    line: int

    def met_by(self, measured: float) -> bool:
        return measured >= self.value if self.comparison == ">=" else measured <= self.value


def parse_rule(text: str) -> tuple[str, float] | None:
    """`">= 3%"` → (">=", 0.03); None when `text` is not a rule."""
    match = RULE.match(str(text))
    if not match:
        return None
    comparison, number, percent = match.groups()
    value = float(number) / 100 if percent else float(number)
    return COMPARISONS.get(comparison, comparison), value


def load_targets(path: Path, known: dict[str, str]) -> dict[str, Target]:
    """Targets from `path` (absent file: none); `known` maps each KPI name to its label."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise TargetsError(
            f"{path}:{line}: error: not valid YAML ({getattr(exc, 'problem', exc)}); "
            'quote each target, e.g. conversion_rate: ">= 3%"'
        ) from exc
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise TargetsError(f'{path}:1: error: write one `kpi: ">= 3%"` per line')
    targets: dict[str, Target] = {}
    for key_node, value_node in root.value:
        name, line = str(key_node.value), key_node.start_mark.line + 1
        if name not in known:
            listed = ", ".join(sorted(known))
            raise TargetsError(
                f"{path}:{line}: error: unknown KPI `{name}`{did_you_mean(name, known)}; use one of: {listed}"
            )
        if name in targets:
            raise TargetsError(
                f"{path}:{line}: error: `{name}` is set twice (first on line {targets[name].line}); keep one"
            )
        rule = parse_rule(value_node.value) if isinstance(value_node, yaml.ScalarNode) else None
        if rule is None:
            raise TargetsError(
                f"{path}:{line}: error: `{name}: {getattr(value_node, 'value', '')}` is not a target; "
                'write it like ">= 3%", "<= 1%" or ">= 4.2" (quoted)'
            )
        targets[name] = Target(name, rule[0], rule[1], line)
    return targets
