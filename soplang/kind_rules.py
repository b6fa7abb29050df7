"""Rules across fields of a valid front matter: what each kind and channel needs, steps and sections."""

from __future__ import annotations

from soplang.problems import ParsedSop
from soplang.spec import IMPLICIT_STEP, SopSpec, did_you_mean
from soplang.staff_audience import check_moments_rules


def check_kind_rules(spec: SopSpec, parsed: ParsedSop) -> None:
    """Steps, schedule, trigger and audience rules that depend on the SOP's kind and channel."""
    line = spec.line_of
    if spec.kind == "community" and spec.schedule is None:
        parsed.add(
            line("kind"), 'a community SOP needs a `schedule` (cron: "30 8 * * *", days: everyday)'
        )
    if spec.kind in ("promotion", "trigger") and spec.schedule is not None:
        why = (
            "run relative to the campaign start (`at`)"
            if spec.kind == "promotion"
            else "run when the event happens"
        )
        parsed.add(line("schedule"), f"{spec.kind} SOPs {why}; remove `schedule`")
    if spec.kind == "trigger" and spec.on is None:
        parsed.add(
            line("kind"),
            "a trigger SOP needs `on:` naming its event (contact.added, favourite.price_drop, order.shipped)",
        )
    if spec.kind != "trigger" and spec.on is not None:
        parsed.add(line("on"), "`on` is only for kind: trigger; remove it")
    if spec.kind == "trigger" and spec.approval is not None:
        parsed.add(
            line("approval"),
            "trigger SOPs answer each event as it comes and cannot wait for approval; "
            "remove `approval`",
        )
    if spec.kind in ("lifecycle", "trigger") and spec.channel != "customer":
        parsed.add(
            line("channel"),
            f"{spec.kind} SOPs talk to one customer at a time; use `channel: customer`",
        )
    if spec.kind == "community" and spec.channel == "customer":
        _check_customer_rhythm(spec, parsed)
    check_moments_rules(spec, parsed)
    if spec.channel != "moments":
        _check_audience(spec, parsed)
    for index in range(len(spec.step_list)):
        _check_step_timing(spec, index, parsed)


def _check_customer_rhythm(spec: SopSpec, parsed: ParsedSop) -> None:
    """A community SOP on `channel: customer` (会员日 sent 1:1) gets no group deals to wait for."""
    for index, step in enumerate(spec.step_list):
        if step.needs is not None:
            parsed.add(
                spec.line_of("steps", index, "needs"),
                f"`needs` is for community steps posted to groups (whether a group waits for its "
                f"deals); step `{step.name}` goes 1:1 to customers and gets no deals: remove it",
            )


def _check_audience(spec: SopSpec, parsed: ParsedSop) -> None:
    audience = spec.audience
    wants = "customers" if spec.channel == "customer" else "groups"
    has = getattr(audience, wants, None) if audience else None
    if has is None and spec.kind != "trigger":
        parsed.add(
            spec.line_of("audience"),
            f"channel `{spec.channel}` needs `audience.{wants}`"
            + (
                " (e.g. groups: {theme: [生鲜]})"
                if wants == "groups"
                else " (e.g. customers: {stage: [new]})"
            ),
        )
    other = "groups" if wants == "customers" else "customers"
    if audience is not None and getattr(audience, other) is not None:
        parsed.add(
            spec.line_of("audience", other),
            f"channel `{spec.channel}` sends to {wants}; remove `audience.{other}`",
        )
    if spec.kind == "lifecycle" and not (
        audience and audience.customers and audience.customers.stage
    ):
        parsed.add(
            spec.line_of("audience"),
            "a lifecycle SOP follows customers through a stage: set `audience.customers.stage`",
        )


_TIMING_RULES: dict[str, tuple[tuple[str, ...], str]] = {
    "promotion": (
        ("at",),
        'needs `at` relative to the campaign start, e.g. {name: burst, at: "0d 10:00"}',
    ),
    "lifecycle": (
        ("after", "send_at"),
        'needs `after` and `send_at`, e.g. {name: coupon, after: 3d, send_at: "10:00"}',
    ),
    "community": ((), "runs on the schedule"),
    "trigger": (
        (),
        'runs when the event happens, or waits with `after` (e.g. 1h, 3d) and/or `send_at: "10:00"`',
    ),
}
# Timing a kind allows without requiring it.
_OPTIONAL_TIMING = {"trigger": ("after", "send_at")}


def _check_step_timing(spec: SopSpec, index: int, parsed: ParsedSop) -> None:
    step = spec.step_list[index]
    required, how = _TIMING_RULES[spec.kind]
    allowed = required + _OPTIONAL_TIMING.get(spec.kind, ())
    keys = ("steps", index) if spec.steps else ("kind",)
    if any(getattr(step, key) is None for key in required):
        parsed.add(spec.line_of(*keys), f"{spec.kind} step `{step.name}` {how}")
    for key in ("at", "after", "send_at"):
        if key not in allowed and getattr(step, key) is not None:
            parsed.add(
                spec.line_of(*keys, key),
                f"`{key}` does not apply to a {spec.kind} step ({how}); remove it",
            )
    if spec.kind == "lifecycle" and step.after_hours is not None:
        parsed.add(
            spec.line_of(*keys, "after"),
            f"lifecycle step `{step.name}`: `after` counts days since entering the stage; "
            f"write e.g. `after: 1d` with `send_at`, not `{step.after}` (hours are for trigger steps)",
        )
    if spec.kind == "trigger":
        _check_trigger_wait(spec, index, keys, parsed)
    else:
        for key in ("unless", "robot"):
            # A moments step's robot reminds the staff who have not posted (engine/moments_results.py).
            if getattr(step, key) and not (key == "robot" and spec.channel == "moments"):
                parsed.add(
                    spec.line_of(*keys, key),
                    f"`{key}` is only for trigger steps; remove it from {spec.kind} step "
                    f"`{step.name}`",
                )


def _check_trigger_wait(
    spec: SopSpec, index: int, keys: tuple[str | int, ...], parsed: ParsedSop
) -> None:
    """`send_at` goes with days, `unless` with a wait."""
    step = spec.step_list[index]
    if step.after_hours is not None and step.send_at is not None:
        parsed.add(
            spec.line_of(*keys, "send_at"),
            f"trigger step `{step.name}`: `after: {step.after}` already says when; `send_at` "
            'goes with days (`after: 1d, send_at: "10:00"`) or alone (the next 10:00); remove one',
        )
    if step.unless and not step.waits:
        parsed.add(
            spec.line_of(*keys, "unless"),
            f"trigger step `{step.name}` is sent when the event is drained, so nothing can happen "
            "before it; `unless` needs a wait: add e.g. `after: 1h`",
        )


def check_steps_and_sections(spec: SopSpec, parsed: ParsedSop) -> None:
    """Each step has one `## name` section and each section belongs to a step."""
    seen: dict[str, int] = {}
    for index, name in enumerate(spec.step_names):
        line = spec.line_of("steps", index) if spec.steps else 1
        if name in seen:
            parsed.add(line, f"step `{name}` is declared twice (first on line {seen[name]})")
            continue
        seen[name] = line
        if name not in spec.sections:
            what = (
                f"step `{name}`" if spec.steps else f"without `steps:` the one step is `{name}`; it"
            )
            parsed.add(line, f"{what} has no `## {name}` section: add one with its message text")
    for name, section in spec.sections.items():
        if name and name not in seen:
            hint = did_you_mean(name, seen)
            if spec.steps:
                message = f"section `## {name}` matches no step{hint}; steps are: {', '.join(seen)}"
            else:
                message = f"section `## {name}` matches no step{hint}; without `steps:` the only section is `## {IMPLICIT_STEP}`"
            parsed.add(section.heading_line, message)
