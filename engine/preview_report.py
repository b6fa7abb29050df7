"""What a preview found and how it reads: when the SOP runs, its audience, WeCom tasks per staff member, the text."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlmodel import Session

from channels.base import max_targets
from core.clock import utcnow
from core.settings import get_settings
from engine.compose import Content
from engine.guard import (
    GuardContext,
    holdout,
    not_a_contact,
    opted_out_of_category,
    run_guards,
)
from models.deliveries import Occurrence
from soplang.attachment_render import with_cards
from soplang.calendar_file import runs_on
from soplang.filters import weekday_cn
from soplang.spec import SopSpec

STAFF_SHOWN = 10  # staff members listed one per line; the rest are summed up
RULE_WORDS = {
    "everyday": "every day",
    "workdays": "working days of China's official calendar (holidays and 调休 included)",
    "weekends": "days off of China's official calendar (weekends and public holidays)",
}
Staff = tuple[str, str]  # (WeCom userid, name)


@dataclass
class Preview:
    """Everything `sopflow preview` says about one step, in the order it says it."""

    heading: str
    when: list[str] = field(default_factory=list)
    audience: str = ""
    notes: list[str] = field(default_factory=list)
    tasks: Counter[Staff] = field(default_factory=Counter)
    shown_for: str | None = None
    text: str | None = None
    nothing: str | None = None  # why no text renders for the shown target

    def report(self) -> str:
        lines = [self.heading]
        lines += [
            f"when 何时: {line}" if i == 0 else f"  {line}" for i, line in enumerate(self.when)
        ]
        lines.append(f"audience 受众: {self.audience}")
        lines += [f"  {note}" for note in self.notes]
        lines += staff_lines(self.tasks)
        lines.append("")
        if self.text is not None:
            lines += [f"message 文案 for {self.shown_for}:", "", self.text]
        else:
            whom = f" for {self.shown_for}" if self.shown_for else ""
            lines.append(f"message 文案{whom}: nothing renders: {self.nothing or 'unknown'}")
        return "\n".join(lines)


def staff_lines(tasks: Counter[Staff]) -> list[str]:
    """The WeCom tasks to confirm: the top staff members one per line, the rest summed, a total."""
    total = sum(tasks.values())
    if not total:
        return ["WeCom tasks 群发任务: none (nothing to send)"]
    lines = [
        f"WeCom tasks 群发任务 (each confirmed by its staff member in WeCom): {total} "
        f"across {len(tasks)} staff member(s)"
    ]
    ranked = sorted(tasks.items(), key=lambda item: (-item[1], item[0]))
    lines += [
        f"  {userid} {name}: {n}" if name else f"  {userid}: {n}"
        for (userid, name), n in ranked[:STAFF_SHOWN]
    ]
    if len(ranked) > STAFF_SHOWN:
        rest = ranked[STAFF_SHOWN:]
        lines.append(f"  … {len(rest)} more staff member(s): {sum(n for _, n in rest)}")
    lines.append(f"  total: {total}")
    return lines


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ---------------------------------------------------------------- when it runs


def cron_times_on(cron: str, day: dt.date, tz: str) -> list[str]:
    """The local HH:MM times a cron fires on `day` in `tz` (at most a few, then `…`)."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(tz))
    times = croniter(cron, start - dt.timedelta(seconds=1))
    found: list[str] = []
    while len(found) < 6:
        moment = times.get_next(dt.datetime)
        if moment.date() != day:
            break
        found.append(f"{moment:%H:%M}")
    return found[:5] + (["…"] if len(found) > 5 else [])


def day_label(day: dt.date) -> str:
    return f"{day.isoformat()} ({weekday_cn(day)})"


def schedule_when(spec: SopSpec, day: dt.date, at: str | None = None) -> tuple[bool, str]:
    """Whether a scheduled SOP runs on `day` (its `days` rule, then its cron), in words.

    `at` is the local time a lifecycle step sends at: its deployment runs daily at it, so the
    schedule's cron does not apply, only its `days` rule and timezone.
    """
    schedule = spec.schedule
    label = day_label(day)
    if schedule is None:
        return True, f"runs on {label} at {at}: every day" if at else f"{label}: no schedule"
    rule = f"`days: {schedule.days}` ({RULE_WORDS[schedule.days]})"
    if not runs_on(day, schedule.days):
        return False, f"does NOT run on {label}: {rule} excludes it"
    times = [at] if at else cron_times_on(schedule.cron, day, schedule.timezone)
    if not times:
        return False, (
            f"does NOT run on {label}: cron `{schedule.cron}` does not fire that day "
            f"({schedule.timezone})"
        )
    return True, f"runs on {label} at {', '.join(times)} ({schedule.timezone}); {rule}"


# ---------------------------------------------------------------- counting a step's sends


@dataclass
class Tally:
    """A step over its whole audience: targets, why some get nothing, WeCom tasks per staff member."""

    targets: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> targets
    tasks: Counter[Staff] = field(default_factory=Counter)
    first: tuple[Any, str] | None = None  # the first target with a text, and the text
    first_target: Any = None  # the audience's first target, text or not
    first_skip: str | None = None  # why the first target gets nothing, if it does not

    def notes(self) -> list[str]:
        return [
            f"{n} get nothing: {reason}"
            for reason, n in sorted(self.skipped.items(), key=lambda i: -i[1])
        ]


Screen = Callable[[Sequence[Any]], Mapping[int, str]]  # targets -> id: why a guard stops it


def sender_of(target: Any) -> Staff:
    """The staff member who confirms the task that reaches `target` (a group's or customer's owner)."""
    return (target.owner_userid or "-", target.owner_name or "")


def tally_batches(
    batches: Iterable[Sequence[Any]],
    content: Content,
    *,
    chat_type: str,
    screen: Screen | None = None,
) -> Tally:
    """Render every batch with the step's real content; one WeCom task per staff member and text,
    split at WeCom's per-call limit, as dispatch makes them."""
    tally = Tally()
    per_text: Counter[tuple[Staff, int]] = Counter()
    for targets in batches:
        if not targets:
            continue
        tally.targets += len(targets)
        rendered = content.render(targets)
        stopped = screen(targets) if screen else {}
        if tally.first_target is None:
            tally.first_target = targets[0]
        for target in targets:
            text = rendered.texts.get(target.id)
            cards = rendered.attachments.get(target.id, ())
            reason = rendered.skipped.get(target.id) if text is None else stopped.get(target.id)
            if text is not None and tally.first is None:
                tally.first = (target, with_cards(text, cards, get_settings().sop_dir))
            if target is tally.first_target:
                tally.first_skip = reason
            if reason is not None:
                tally.skipped[reason] += 1
            elif text is not None:
                per_text[(sender_of(target), hash((text, cards)))] += 1
    per_call = max_targets(chat_type)
    for (staff, _text), n in per_text.items():
        tally.tasks[staff] += math.ceil(n / per_call)
    return tally


def customer_screen(
    spec: SopSpec, step: str, label: str, *, session: Session, category: str | None = None
) -> Screen:
    """The guards a run applies to customers whatever the clock says: not a contact, opted out of
    the category, the holdout. Quiet hours and caps depend on the moment of sending."""
    occurrence = Occurrence(spec.id, step, label, get_settings().channel)
    scoped = spec.model_copy(update={"category": category}) if category else spec
    guards = (not_a_contact, opted_out_of_category, holdout)

    def screen(customers: Sequence[Any]) -> Mapping[int, str]:
        ctx = GuardContext.for_spec(
            scoped, occurrence, now=utcnow(), settings=get_settings(), session=session
        )
        decided = run_guards(ctx, customers, guards)
        return {i: d.reason for i, d in decided.items() if d.reason}

    return screen
