"""Rules across fields of a valid front matter: what each kind and channel needs, steps and sections."""

from __future__ import annotations

from soplang.problems import ParsedSop
from soplang.spec import IMPLICIT_STEP, SopSpec, did_you_mean


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
        parsed.add(
            line("channel"),
            "community SOPs post to groups; use `channel: group` or `channel: robot`",
        )
    _check_audience(spec, parsed)
    for index in range(len(spec.step_list)):
        _check_step_timing(spec, index, parsed)


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
    "trigger": ((), "runs when the event happens"),
}


def _check_step_timing(spec: SopSpec, index: int, parsed: ParsedSop) -> None:
    step = spec.step_list[index]
    required, how = _TIMING_RULES[spec.kind]
    keys = ("steps", index) if spec.steps else ("kind",)
    if any(getattr(step, key) is None for key in required):
        parsed.add(spec.line_of(*keys), f"{spec.kind} step `{step.name}` {how}")
    for key in ("at", "after", "send_at"):
        if key not in required and getattr(step, key) is not None:
            parsed.add(
                spec.line_of(*keys, key),
                f"`{key}` does not apply to a {spec.kind} step ({how}); remove it",
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
