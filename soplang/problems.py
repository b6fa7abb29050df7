"""What reading an SOP file found: each problem on its line, and the parse that collects them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from soplang.spec import Section, SopSpec

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Problem:
    """One finding about an SOP file; `str()` is `path:line: severity: message`."""

    path: str
    line: int
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


@dataclass
class ParsedSop:
    """What could be read from one file: the spec when it is valid, its sections, its problems."""

    path: Path
    spec: SopSpec | None = None
    data: dict[str, Any] | None = None  # the raw front matter, as YAML gave it
    # When the YAML did not parse: its top-level `key: value` lines, read one by one.
    guessed: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    sections: dict[str, Section] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, line: int, message: str, severity: Severity = "error") -> None:
        self.problems.append(Problem(str(self.path), line, severity, message))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def kind(self) -> str | None:
        """The SOP's kind, read from the raw front matter when the spec did not validate."""
        if self.spec is not None:
            return self.spec.kind
        kind = (self.data or {}).get("kind")
        return kind if isinstance(kind, str) else None
