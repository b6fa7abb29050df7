"""What a community step needs before it sends (`needs: deals | nothing`), and lint's checks of it."""

from __future__ import annotations

from jinja2 import TemplateSyntaxError

from soplang.problems import ParsedSop
from soplang.spec import Section, SopSpec
from soplang.template_scan import variable_uses

DEALS = "deals"


def deal_lines(section: Section) -> list[int]:
    """The file lines on which a step's text reads `deals` (none when the text does not parse)."""
    try:
        uses = variable_uses(section.text)
    except TemplateSyntaxError:
        return []
    return [section.first_line + line - 1 for name, line in uses if name == DEALS]


def needs_deals(spec: SopSpec, step: str) -> bool:
    """Whether a community step skips groups with no deals that day.

    `needs: deals` or `needs: nothing` says so; without `needs` a step needs deals exactly when
    its text uses `deals` (早报价, 晚安心选), so a quiz, vote or topic post sends every day.
    """
    declared = spec.step(step).needs
    if declared is not None:
        return declared == DEALS
    section = spec.sections.get(step)
    return section is not None and bool(deal_lines(section))


def check_needs(spec: SopSpec, parsed: ParsedSop) -> None:
    """`needs` only on community steps, and never `needs: nothing` on a text that lists deals."""
    for index, step in enumerate(spec.step_list):
        if step.needs is None:
            continue
        line = spec.line_of("steps", index, "needs")
        if spec.kind != "community":
            parsed.add(
                line,
                f"`needs` only applies to community steps (whether a step waits for the day's "
                f"deals); remove it from {spec.kind} step `{step.name}`",
            )
            continue
        section = spec.sections.get(step.name)
        if step.needs != "nothing" or section is None:
            continue
        for use in deal_lines(section):
            parsed.add(
                use,
                f"step `{step.name}` says `needs: nothing` (line {line}) but its text uses "
                "`deals`, which such a step does not get: take the deals out of the text, or "
                "write `needs: deals` (groups with no deals that day are then skipped)",
            )
