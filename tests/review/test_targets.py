"""The targets file: rules parsed, and every mistake named with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import TargetsError
from core.settings import PROJECT_ROOT
from review.kpis import KPIS
from review.targets import load_targets, parse_rule

KNOWN = {name: d.label for name, d in KPIS.items()}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "rule"),
    [(">= 3%", (">=", 0.03)), ("<=1%", ("<=", 0.01)), ("≥ 4.2", (">=", 4.2)), ("3%", None)],
)
def test_rules(text: str, rule: tuple[str, float] | None) -> None:
    assert parse_rule(text) == (pytest.approx(rule) if rule else None)


def test_the_shipped_targets_file_loads() -> None:
    targets = load_targets(PROJECT_ROOT / "sop" / "targets.yaml", KNOWN)
    assert targets["conversion_rate"].value == pytest.approx(0.03)
    assert targets["deletion_rate_7d"].comparison == "<="


def test_a_missing_file_means_no_targets(tmp_path: Path) -> None:
    assert load_targets(tmp_path / "absent.yaml", KNOWN) == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'conversion_rate: ">= 3%"\nconversion_rat: ">= 3%"\n',
            r"targets.yaml:2: error: unknown KPI `conversion_rat` \(did you mean `conversion_rate`\?\)",
        ),
        (
            'conversion_rate: ">= 3%"\nconversion_rate: ">= 4%"\n',
            r"targets.yaml:2: error: `conversion_rate` is set twice \(first on line 1\)",
        ),
        (
            'conversion_rate: "about 3%"\n',
            r'targets.yaml:1: error: `conversion_rate: about 3%` is not a target; write it like ">= 3%"',
        ),
        ("conversion_rate: >= 3%\n", r"targets.yaml:1: error: not valid YAML .*quote each target"),
        ("- conversion_rate\n", r"targets.yaml:1: error: write one"),
    ],
)
def test_mistakes_name_the_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(TargetsError, match=expected):
        load_targets(write(tmp_path, text), KNOWN)
