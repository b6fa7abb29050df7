"""The rooms' import contract (`[tool.importlinter]` in pyproject.toml) holds, and bites when broken."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# Rooms that may import Prefect; every other room is forbidden it by the contract.
PREFECT_ROOMS = {"orchestration", "tasks", "flows", "sopflow"}
# One breach of each rule: (room, module it imports, the contract that must report it).
BREACHES = [
    ("core", "sopflow", "rooms"),  # the ground importing the top
    ("models", "channels", "rooms"),  # a sibling importing a sibling
    ("flows", "channels", "flows-not-channels"),
    ("engine", "prefect", "no-prefect-below-orchestration"),
]


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the venv's `lint-imports` with the project's contract over the packages found in `cwd`."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(CONFIG), "--no-cache"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(cwd)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def contract_names() -> dict[str, str]:
    """Each contract's id and its name, as `lint-imports` reports it."""
    config = tomllib.loads(CONFIG.read_text(encoding="utf-8"))["tool"]["importlinter"]
    return {contract["id"]: contract["name"] for contract in config["contracts"]}


def rooms_tree(root: Path, extra: dict[str, str] | None = None) -> Path:
    """A throwaway tree with one package per room, each importing what the contract allows it:
    every room of the layer just below, and Prefect where it may; `extra` adds one import per room."""
    config = tomllib.loads(CONFIG.read_text(encoding="utf-8"))["tool"]["importlinter"]
    (layers,) = (c["layers"] for c in config["contracts"] if c["type"] == "layers")
    levels = [[room.strip() for room in layer.split("|")] for layer in layers]
    for level, below in zip(levels, [*levels[1:], []], strict=True):
        for room in level:
            imports = [*below, *(["prefect"] if room in PREFECT_ROOMS else [])]
            if extra and room in extra:
                imports.append(extra[room])
            package = root / room
            package.mkdir(parents=True)
            lines = [f'"""The {room} room."""', "", *(f"import {name}" for name in imports)]
            (package / "__init__.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert set(config["root_packages"]) == {room for level in levels for room in level}
    return root


def test_the_project_keeps_its_import_contract() -> None:
    """Every room imports only what ARCHITECTURE.md allows it."""
    result = lint_imports(PROJECT_ROOT)

    assert result.returncode == 0, result.stdout + result.stderr


def test_a_tree_that_keeps_the_rules_passes_the_contract(tmp_path: Path) -> None:
    """Rooms importing only the layer below (and Prefect from orchestration up) break nothing."""
    result = lint_imports(rooms_tree(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("room", "imported", "contract"), BREACHES)
def test_one_forbidden_import_breaks_the_contract(
    tmp_path: Path, room: str, imported: str, contract: str
) -> None:
    """A single import against a rule fails `lint-imports`, naming the rule and the import."""
    result = lint_imports(rooms_tree(tmp_path, extra={room: imported}))

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract_names()[contract]} BROKEN" in result.stdout
    assert f"{room} -> {imported}" in result.stdout
