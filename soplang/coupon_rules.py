"""Lint `issue:` (coupons): only on 1:1 trigger steps, the text shows `coupon.code`, and `coupon`
is read only by steps that issue one."""

from __future__ import annotations

from jinja2 import TemplateSyntaxError

from soplang.problems import ParsedSop
from soplang.spec import SopSpec
from soplang.template_scan import used_paths, variable_uses

COUPON_VARIABLE = "coupon"
CODE_PATH = "coupon.code"


def check_coupons(spec: SopSpec, parsed: ParsedSop) -> None:
    """Every `issue:` problem of a valid SOP, with the file line of the step or the text."""
    for index, step in enumerate(spec.step_list):
        section = spec.sections.get(step.name)
        if section is not None and not _parses(section.text):
            section = None  # its syntax error is reported by the step's own checks
        line = spec.line_of("steps", index, "issue")
        if step.issue is None:
            if section is not None:
                _reads_coupon_without_issue(parsed, step.name, section.text, section.first_line)
            continue
        where = f"step `{step.name}` issues coupon `{step.issue.coupon}`"
        if spec.kind != "trigger" or spec.channel != "customer":
            parsed.add(
                line,
                f"{where}, but coupons are issued only on 1:1 trigger steps (`kind: trigger`, "
                f"`channel: customer`: welcome, complaint, birthday); this is a {spec.kind} SOP "
                f"on channel {spec.channel}, whose text goes out as one task per staff member "
                "that a code per customer would split into one task (and one confirmation) per "
                "customer: remove `issue:` and mention the offer in the text, or issue it from "
                "a trigger SOP",
            )
        elif step.robot is not None:
            parsed.add(
                line,
                f"{where}, but it posts to the robot `{step.robot}` (staff), not to the customer: "
                "put `issue:` on a step sent to the customer",
            )
        if section is not None and not any(
            path == CODE_PATH for path, _ in used_paths(section.text)
        ):
            parsed.add(
                section.heading_line,
                f"{where} but its text never shows the code: add `{{{{ coupon.code }}}}` "
                "(and `{{ coupon.expires }}` if you like) so the customer can use it",
            )


def _reads_coupon_without_issue(parsed: ParsedSop, step: str, text: str, first_line: int) -> None:
    for name, line in variable_uses(text):
        if name == COUPON_VARIABLE:
            parsed.add(
                first_line + line - 1,
                f"step `{step}` reads `coupon` but issues none: add `issue: {{coupon: CODE}}` to "
                "the step (the chain's coupon code), or remove `coupon` from the text",
            )


def _parses(text: str) -> bool:
    try:
        variable_uses(text)
    except (TemplateSyntaxError, RecursionError, ValueError, MemoryError):
        return False  # syntax, nesting or a literal Python refuses: the step's own check says so
    return True
