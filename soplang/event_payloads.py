"""The payload fields trigger events carry, and a trigger step's `when:` that picks events by them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from soplang.problems import ParsedSop
from soplang.spec import SopSpec, did_you_mean


@dataclass(frozen=True)
class PayloadField:
    """One payload field a `when:` may name: the values it takes, in words and as a check."""

    words: str
    choices: tuple[str, ...] = ()  # empty: a positive integer

    def accepts(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        return isinstance(value, int) and not isinstance(value, bool) and value > 0


# What a `when:` may test, per trigger event. Every event recorded carries these fields
# (engine/events.py refuses one without them), so a `when:` never meets a missing field.
WHEN_FIELDS: dict[str, dict[str, PayloadField]] = {
    "customer.birthday": {
        "kind": PayloadField("day (生日当天) or month (生日月的 1 号)", ("day", "month")),
    },
    "checkin": {"streak": PayloadField("days in a row, a positive integer such as 7")},
}
BIRTHDAY_KINDS = WHEN_FIELDS["customer.birthday"]["kind"].choices


def payload_problem(kind: str, payload: Mapping[str, Any]) -> str | None:
    """Why a `kind` event's payload lacks a field `when:` tests, or None."""
    for name, field in WHEN_FIELDS.get(kind, {}).items():
        if not field.accepts(payload.get(name)):
            return f"a {kind} event needs `{name}` in its payload: {field.words}"
    return None


def when_matches(when: Mapping[str, Any] | None, payload: Mapping[str, Any]) -> bool:
    """True when the event's payload has one of the listed values for every field of `when`."""
    for name, wanted in (when or {}).items():
        values = wanted if isinstance(wanted, list) else [wanted]
        if payload.get(name) not in values:
            return False
    return True


def when_words(when: Mapping[str, Any]) -> str:
    """`when: {streak: [7, 14]}` as the operator wrote it, for skip reasons and previews."""
    return "when: {" + ", ".join(f"{k}: {v}" for k, v in when.items()) + "}"


def check_when(spec: SopSpec, parsed: ParsedSop) -> None:
    """`when:` only on trigger steps, naming fields the event carries, with values it can have."""
    for index, step in enumerate(spec.step_list):
        if step.when is None:
            continue
        line = spec.line_of("steps", index, "when")
        fields = WHEN_FIELDS.get(spec.on or "", {}) if spec.kind == "trigger" else {}
        if not fields:
            offered = ", ".join(WHEN_FIELDS)
            parsed.add(
                line,
                f"`when` picks events by their payload and applies only to trigger steps on "
                f"{offered}; this is a {spec.kind} step"
                + (f" on {spec.on}" if spec.on else "")
                + ": remove it",
            )
            continue
        if not step.when:
            parsed.add(line, f"`when` is empty: name a field ({', '.join(fields)}) or remove it")
        for name, wanted in step.when.items():
            field = fields.get(name)
            if field is None:
                parsed.add(
                    line,
                    f"`when: {{{name}: …}}`: {spec.on} events carry no `{name}`"
                    f"{did_you_mean(name, fields)}; they carry: {', '.join(fields)}",
                )
                continue
            values = wanted if isinstance(wanted, list) else [wanted]
            bad = [v for v in values if not field.accepts(v)] or ([] if values else ["(none)"])
            if bad:
                parsed.add(
                    line,
                    f"`when: {{{name}: …}}`: {', '.join(map(str, bad))} is not a value {name} "
                    f"can have; {name} is {field.words}",
                )
