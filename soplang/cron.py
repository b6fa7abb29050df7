"""Five-field cron expressions checked in plain words (an SOP's `schedule.cron`)."""

from __future__ import annotations

import re

_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_CRON_NAMES = {
    "month": "jan feb mar apr may jun jul aug sep oct nov dec".split(),
    "day of week": "sun mon tue wed thu fri sat".split(),
}
_CRON_ATOM = re.compile(r"^(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(\d+))?$")


def cron_problem(expression: str) -> str | None:
    """What is wrong with a five-field cron expression, in plain words, or None when it is fine."""
    fields = str(expression).split()
    if len(fields) != 5:
        return (
            f"cron `{expression}` has {len(fields)} fields; write 5: minute hour day-of-month "
            'month day-of-week, e.g. "30 8 * * *" for 08:30 every day'
        )
    for text, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        problem = _cron_field_problem(text.lower(), name, low, high)
        if problem:
            return f"cron `{expression}`: {problem}"
    return _croniter_problem(expression)


def _cron_field_problem(text: str, name: str, low: int, high: int) -> str | None:
    for part in text.split(","):
        match = _CRON_ATOM.match(part)
        if not match:
            return f"`{text}` is not a valid {name}"
        for bound in match.group(1).split("-"):
            if bound == "*":
                continue
            if bound in _CRON_NAMES.get(name, ()):
                continue
            if not bound.isdigit() or not low <= int(bound) <= high:
                return f"{name} `{bound}` is out of range {low}-{high}"
    return None


def _croniter_problem(expression: str) -> str | None:
    """A second opinion from croniter, the parser Prefect's cron schedules use."""
    from croniter import croniter

    return None if croniter.is_valid(expression) else f"cron `{expression}` is not valid"
