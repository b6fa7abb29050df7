"""Split an SOP file's text into its front matter and its `## step` sections, with file lines."""

from __future__ import annotations

import re

from soplang.problems import ParsedSop
from soplang.spec import Section

FENCE = "---"
_HEADING = re.compile(r"^##(?!#)\s*(.*?)\s*$")


def split_front_matter(text: str, parsed: ParsedSop) -> tuple[str, list[str], int] | None:
    """The front matter text, the body lines and the file line the body starts on."""
    lines = text.split("\n")
    if lines[0].rstrip() != FENCE:
        parsed.add(
            1, "the file must start with a `---` line opening the front matter (id, title, kind …)"
        )
        return None
    for index in range(1, len(lines)):
        if lines[index].rstrip() == FENCE:
            return "\n".join(lines[1:index]), lines[index + 1 :], index + 2
    parsed.add(1, "the front matter opened on line 1 is never closed; add a `---` line after it")
    return None


def read_sections(body: list[str], body_first_line: int, parsed: ParsedSop) -> None:
    """Split the body at `## name` headings into sections; text before the first one is ignored."""
    current: tuple[str, int] | None = None
    collected: list[str] = []
    stray_line: int | None = None

    def close() -> None:
        if current is None:
            return
        name, heading_line = current
        if name in parsed.sections:
            first = parsed.sections[name].heading_line
            parsed.add(heading_line, f"section `## {name}` appears twice (first on line {first})")
            return
        text = "\n".join(collected)
        parsed.sections[name] = Section(
            text=text, first_line=heading_line + 1, heading_line=heading_line
        )
        if not text.strip():
            parsed.add(
                heading_line, f"section `## {name}` is empty; write the message text under it"
            )

    for offset, line in enumerate(body):
        number = body_first_line + offset
        heading = _HEADING.match(line)
        if heading:
            close()
            current, collected = (heading.group(1), number), []
            if not heading.group(1):
                parsed.add(number, "a `##` heading needs the step name, e.g. `## main`")
        elif current is None:
            if line.strip() and stray_line is None:
                stray_line = number
        else:
            collected.append(line)
    close()
    if stray_line is not None:
        parsed.add(
            stray_line,
            "text before the first `## step` heading is not sent; move it under a heading or delete it",
            "warning",
        )
