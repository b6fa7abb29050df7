"""Lint one step's text: syntax, every unknown variable and field on its own line, then a sample render.

A step is checked against the variables of its SOP's kind, channel and event. When the front
matter is broken, whatever of those it still says (a valid `kind: promotion`, say) is used, and
what it does not say is widened to every possibility: a variable is refused only if no SOP that
matches what the file does say could offer it. The sample render needs one exact context, so it
runs only when kind, channel (and a trigger's event) are known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from soplang.context import (
    INTERNAL_FIELDS,
    PER_CUSTOMER_FIELDS,
    VARIABLES,
    available_variables,
    sample_context,
)
from soplang.environment import environment
from soplang.problems import ParsedSop
from soplang.spec import CHANNELS, KINDS, TRIGGER_EVENTS, Section, did_you_mean
from soplang.template import CompiledStep, RenderFailure, compile_template, render
from soplang.template_check import field_problems
from soplang.template_scan import used_paths, variable_uses

# WeCom limits on one text message, in UTF-8 bytes: add_msg_template text.content, robot text.
# Moments: WeCom counts 2,000 characters; 2,000 bytes is never more (engine/moments.py).
MAX_BYTES = {"customer": 4000, "group": 4000, "robot": 2048, "moments": 2000}


@dataclass(frozen=True)
class StepFrame:
    """What one step is checked against; None where the front matter does not say (validly)."""

    step: str
    kind: str | None
    channel: str | None
    on: str | None
    sop: dict[str, str]
    valid: bool  # the front matter validated: kind, channel and event are the SOP's own

    @property
    def exact(self) -> bool:
        """Kind, channel and (for a trigger) event are known: one sample context applies."""
        return bool(self.kind and self.channel and (self.kind != "trigger" or self.on))

    def variables(self) -> list[str]:
        """The variables the step may read: exactly its own, or all a matching SOP could have."""
        if self.exact:
            return available_variables(self.kind, self.channel, self.step, self.on)  # type: ignore[arg-type]
        kinds = (self.kind,) if self.kind else KINDS
        channels = (self.channel,) if self.channel else CHANNELS
        events = (self.on,) if self.on else (None, *TRIGGER_EVENTS)
        return sorted(
            {
                v.name  # a name two kinds provide differently (`group`) is listed once
                for v in VARIABLES
                if any(
                    v.provided(k, c, self.step, on)
                    for k in kinds
                    for c in channels
                    for on in events
                )
            }
        )

    def where(self) -> str:
        """`step `main` of a community SOP on channel group`, as far as it is known."""
        sop = f"a {self.kind} SOP" if self.kind else "any SOP"
        on = f" on channel {self.channel}" if self.channel else ""
        return f"step `{self.step}` of {sop}{on}"


def frame_of(parsed: ParsedSop, step: str) -> StepFrame:
    """The frame of `step` from the spec, or from what the broken front matter still says."""
    spec = parsed.spec
    if spec is not None:
        sop = {"id": spec.id, "title": spec.title}
        return StepFrame(step, spec.kind, spec.channel, spec.on, sop, valid=True)
    raw: dict[Any, Any] = parsed.data if parsed.data is not None else parsed.guessed

    def pick(key: str, choices: tuple[str, ...]) -> str | None:
        value = raw.get(key)
        return value if isinstance(value, str) and value in choices else None

    kind = pick("kind", KINDS)
    on = pick("on", TRIGGER_EVENTS) if kind in (None, "trigger") else None
    title = raw.get("title")
    sop = {"id": parsed.path.stem, "title": title if isinstance(title, str) else parsed.path.stem}
    return StepFrame(step, kind, pick("channel", CHANNELS), on, sop, valid=False)


def check_step(parsed: ParsedSop, frame: StepFrame, section: Section) -> None:
    """Every problem of one step's text, added to `parsed` with its file line."""
    try:
        compiled = compile_template(
            section.text,
            sop_id=frame.sop["id"],
            step=frame.step,
            path=str(parsed.path),
            first_line=section.first_line,
        )
    except RenderFailure as exc:
        parsed.add(exc.line or section.first_line, exc.detail)
        return
    if _name_problems(parsed, frame, section) or not frame.exact:
        return
    _render_problems(parsed, frame, section, compiled)


def _name_problems(parsed: ParsedSop, frame: StepFrame, section: Section) -> int:
    """Unknown variables and fields, unsafe attributes and internal ids; returns the errors found."""
    tree = environment().parse(section.text)
    available = frame.variables()
    samples = {v.name: v.sample for v in VARIABLES if v.name in available}
    errors = 0

    def error(line: int, message: str) -> None:
        nonlocal errors
        errors += 1
        parsed.add(section.first_line + line - 1, message)

    for name, line in variable_uses(tree):
        if name not in available:
            error(
                line,
                f"variable `{name}` is not available in {frame.where()}"
                f"{did_you_mean(name, available)}; available: {', '.join(available)}",
            )
    try:
        fields = field_problems(tree, samples, available)
    except RecursionError:  # nesting the compiler took but this walk does not: the render decides
        fields = []
    for line, message in fields:
        error(line, message)
    for path, line in used_paths(tree):
        if path.rsplit(".", 1)[-1].startswith("_"):
            error(line, f"unsafe attribute `{path}`: names starting with _ are blocked")
        elif path in INTERNAL_FIELDS:
            parsed.add(
                section.first_line + line - 1,
                f"`{path}` is an internal id; do not put it in a message to customers",
                "warning",
            )
        elif (
            frame.valid
            and frame.channel == "customer"
            and frame.kind != "trigger"
            and path in PER_CUSTOMER_FIELDS
        ):
            # Triggers answer one customer's event at a time; a personal text costs nothing there.
            parsed.add(
                section.first_line + line - 1,
                f"`{path}` makes every customer's text different, so each staff member gets one "
                "WeCom task to confirm per customer (thousands); use segment-level fields such "
                "as customer.region or customer.tier_label, or accept the extra tasks",
                "warning",
            )
    return errors


def _render_problems(
    parsed: ParsedSop, frame: StepFrame, section: Section, compiled: CompiledStep
) -> None:
    context = sample_context(frame.kind, frame.channel, frame.step, frame.on, sop=frame.sop)  # type: ignore[arg-type]
    try:
        text = render(compiled, context)
    except RenderFailure as exc:
        parsed.add(exc.line or section.first_line, f"{exc.detail} (rendering the sample context)")
        return
    size, limit = len(text.encode()), MAX_BYTES[frame.channel]  # type: ignore[index]
    if size > limit:
        parsed.add(
            section.heading_line,
            f"step `{frame.step}` renders to {size} bytes with the sample context; WeCom allows "
            f"{limit} bytes on channel {frame.channel}: shorten the text or list fewer items",
        )
    elif not text.strip():
        parsed.add(
            section.heading_line,
            f"step `{frame.step}` renders to an empty message with the sample context",
        )
