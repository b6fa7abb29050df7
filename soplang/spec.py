"""The SOP file schema: pydantic models for an SOP's front matter, its steps and its sections."""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from core.clock import DAY_RULES
from models.vocab import CATEGORIES, GENDERS, STAGES, THEMES, TIERS
from soplang.attachment_spec import Attachments
from soplang.coupon_spec import CouponIssue
from soplang.cron import cron_problem
from soplang.staff_audience import StaffAudience

KINDS = ("community", "promotion", "lifecycle", "trigger")
CHANNELS = ("group", "customer", "robot", "moments")
PRIORITIES = ("service", "high", "normal", "low")
TRIGGER_EVENTS = (
    "contact.added",
    "favourite.price_drop",
    "order.shipped",
    "complaint.opened",
    "complaint.updated",
    "complaint.closed",
    "order.received",
    "customer.birthday",
    "checkin",
    "group.member_joined",
)
IMPLICIT_STEP = "main"
# What a community step waits for: the day's deals for the group, or nothing (sends every day).
NEEDS = ("deals", "nothing")

ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
STEP_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
# Promotion: days relative to the campaign start and a local time, e.g. "-1d 20:00", "0d 10:00".
AT_PATTERN = re.compile(r"^([+-]?\d{1,3})d ([01]?\d|2[0-3]):([0-5]\d)$")
# Lifecycle: days after the customer entered the stage, e.g. "3d"; trigger steps may also wait
# hours after the event, e.g. "1h" (soplang/kind_rules.py refuses hours on lifecycle steps).
AFTER_PATTERN = re.compile(r"^(\d{1,4})([dh])$")
CLOCK_PATTERN = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
WINDOW_PATTERN = re.compile(r"^(\d{1,4})([hd])$")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean `x`?)` when `word` looks like one of `choices`, else an empty string."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _one_of(choices: Iterable[str], what: str, labels: dict[str, str] | None = None) -> Callable:
    """A validator accepting only `choices`, with a message listing them (and a did-you-mean)."""
    allowed = tuple(choices)

    def check(value: str) -> str:
        if value in allowed:
            return value
        if labels and value in labels.values():
            key = next(k for k, label in labels.items() if label == value)
            raise ValueError(f"write {what} `{value}` as `{key}`")
        listed = ", ".join(f"{c} ({labels[c]})" if labels else c for c in allowed)
        raise ValueError(
            f"unknown {what} `{value}`{did_you_mean(value, allowed)}; use one of: {listed}"
        )

    return check


def _as_list(value: Any) -> Any:
    """Let ops write a single value where a list is expected: `theme: 生鲜` means `[生鲜]`."""
    return (
        [value] if isinstance(value, str | int | float) and not isinstance(value, bool) else value
    )


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _check_cron(value: str) -> str:
    problem = cron_problem(value)
    if problem:
        raise ValueError(problem)
    return " ".join(value.split())


def _check_timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone `{value}`{did_you_mean(value, _timezones())}; "
            "write an IANA name such as Asia/Shanghai"
        ) from None
    return value


def _pattern(regex: re.Pattern[str], example: str) -> BeforeValidator:
    """Text matching `regex`; a bare number (e.g. `after: 3`) gets the same message as bad text."""

    def check(value: Any) -> Any:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            if not regex.match(str(value).strip()):
                raise ValueError(f"`{value}` is not in the form {example}")
            return str(value).strip()
        return value

    return BeforeValidator(check)


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


StrList = Annotated[list[Annotated[str, AfterValidator(_non_empty)]], BeforeValidator(_as_list)]
Stage = Annotated[str, AfterValidator(_one_of(STAGES, "stage", STAGES))]
Tier = Annotated[str, AfterValidator(_one_of(TIERS, "tier", TIERS))]
Theme = Annotated[str, AfterValidator(_one_of(THEMES, "theme", THEMES))]
Gender = Annotated[str, AfterValidator(_one_of(GENDERS, "gender", GENDERS))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Schedule(_Strict):
    """When a community or lifecycle SOP runs, on the local wall clock."""

    cron: Annotated[str, AfterValidator(_check_cron)] = Field(
        description='five-field cron, e.g. "30 8 * * *"'
    )
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "Asia/Shanghai"
    days: Annotated[str, AfterValidator(_one_of(DAY_RULES, "days rule"))] = "everyday"


class GroupAudience(_Strict):
    """Customer groups (社群) by theme, region and owning staff member (群主's WeCom userid)."""

    theme: Annotated[list[Theme], BeforeValidator(_as_list)] = []
    region: StrList = []
    owner: StrList = []


class DayRange(_Strict):
    """Days since the last purchase: at least `gte`, at most `lte`."""

    gte: int | None = Field(default=None, ge=0)
    lte: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> DayRange:
        if self.gte is not None and self.lte is not None and self.gte > self.lte:
            raise ValueError(f"gte ({self.gte}) is larger than lte ({self.lte}); swap them")
        return self


def _birthday_month(value: Any) -> Any:
    """A month 1–12, or `this`: the month the run is in (local time)."""
    if value == "this" or (
        isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 12
    ):
        return value
    if value in ("本月", "当月"):
        raise ValueError(f"write birthday_month `{value}` as `this`")
    raise ValueError(
        f"birthday_month `{value}` is not a month; write 1–12, or `this` for the run's month"
    )


BirthdayMonth = Annotated[int | str, BeforeValidator(_birthday_month)]


class CustomerAudience(_Strict):
    """Customers (1:1) by stage, tier, region, tags, recency, store, gender, paid membership,
    birthday month and the contact way they came through; `holdout` keeps a control group."""

    stage: Annotated[list[Stage], BeforeValidator(_as_list)] = []
    tier: Annotated[list[Tier], BeforeValidator(_as_list)] = []
    region: StrList = []
    tags_any: StrList = []
    tags_none: StrList = []
    last_purchase_days: DayRange | None = None
    store: StrList = []  # store code or name
    gender: Annotated[list[Gender], BeforeValidator(_as_list)] = []
    paid_member: bool | None = None  # true: paid members (黑卡) only; false: everyone else
    birthday_month: Annotated[list[BirthdayMonth], BeforeValidator(_as_list)] = []
    source_state: StrList = []  # the contact way's `state` they were added through (store-bj01)
    holdout: float = Field(default=0.0, ge=0.0, le=0.5)


class Audience(_Strict):
    groups: GroupAudience | None = None
    customers: CustomerAudience | None = None
    staff: StaffAudience | None = None  # channel: moments


class Approval(_Strict):
    over: int = Field(ge=1, description="pause for approval above this many recipients")


class Attribution(_Strict):
    window: Annotated[str, _pattern(WINDOW_PATTERN, '"72h" or "3d"')] = "72h"


class Step(_Strict):
    """One send of an SOP; each has its own `## name` section."""

    name: str
    at: Annotated[str, _pattern(AT_PATTERN, '"-1d 20:00", "0d 10:00" or "+1d 20:00"')] | None = None
    after: (
        Annotated[
            str,
            _pattern(AFTER_PATTERN, '"3d" (days after the stage entry or event) or "1h" (hours)'),
        ]
        | None
    ) = None
    send_at: Annotated[str, _pattern(CLOCK_PATTERN, '"10:00" (local time)')] | None = None
    # Trigger steps that wait: skipped when a later event of one of these kinds (same customer,
    # same complaint/order) has happened by the time the step is due.
    unless: Annotated[
        list[Annotated[str, AfterValidator(_one_of(TRIGGER_EVENTS, "unless event"))]],
        BeforeValidator(_as_list),
    ] = []
    # Trigger steps: post the text to this group robot (a name in SOPFLOW_ROBOT_KEYS), @-ing the
    # customer's owner staff, instead of sending it to the customer.
    robot: Annotated[str, AfterValidator(_non_empty)] | None = None
    # None: the step needs deals when its text uses `deals` (soplang/needs.py decides).
    needs: Annotated[str, AfterValidator(_one_of(NEEDS, "needs"))] | None = None
    # Trigger steps: answer only events whose payload matches, e.g. {streak: [7, 14, 30]}
    # (soplang/event_payloads.py says which fields each event offers).
    when: dict[str, int | str | list[int | str]] | None = None
    # Up to 9 images, links, mini-program cards, videos or files sent with the text.
    attachments: Attachments = []
    # 1:1 trigger steps: a coupon the chain issues first (soplang/coupon_spec.py).
    issue: CouponIssue | None = None

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        if not STEP_NAME_PATTERN.match(value):
            raise ValueError(
                f"step name `{value}` must be lowercase letters, digits or _, starting with a letter "
                "(e.g. preview, burst, recap)"
            )
        return value

    @property
    def at_offset(self) -> tuple[int, int, int] | None:
        """(days, hour, minute) of a promotion step relative to the campaign start."""
        match = AT_PATTERN.match(self.at or "")
        return (int(match[1]), int(match[2]), int(match[3])) if match else None

    @property
    def after_days(self) -> int | None:
        match = AFTER_PATTERN.match(self.after or "")
        return int(match[1]) if match and match[2] == "d" else None

    @property
    def after_hours(self) -> int | None:
        match = AFTER_PATTERN.match(self.after or "")
        return int(match[1]) if match and match[2] == "h" else None

    @property
    def waits(self) -> bool:
        """A trigger step that is sent later than the event (`after` or `send_at`)."""
        return self.after is not None or self.send_at is not None

    @property
    def send_time(self) -> tuple[int, int] | None:
        match = CLOCK_PATTERN.match(self.send_at or "")
        return (int(match[1]), int(match[2])) if match else None


class Section(BaseModel):
    """The Jinja2 text of one step and the file line its first text line is on."""

    model_config = ConfigDict(frozen=True)

    text: str
    first_line: int
    heading_line: int


class SopFrontMatter(_Strict):
    """Exactly what ops may write between the `---` lines; unknown keys are refused."""

    id: Annotated[str, _pattern(ID_PATTERN, "kebab-case such as morning-price")] = Field(
        max_length=64
    )
    title: Annotated[str, AfterValidator(_non_empty)]
    kind: Annotated[str, AfterValidator(_one_of(KINDS, "kind"))]
    channel: Annotated[str, AfterValidator(_one_of(CHANNELS, "channel"))]
    category: Annotated[str, AfterValidator(_one_of(CATEGORIES, "category", CATEGORIES))]
    priority: Annotated[str, AfterValidator(_one_of(PRIORITIES, "priority"))] = "normal"
    schedule: Schedule | None = None
    audience: Audience | None = None
    approval: Approval | None = None
    steps: list[Step] | None = Field(default=None, min_length=1)
    on: Annotated[str, AfterValidator(_one_of(TRIGGER_EVENTS, "trigger event"))] | None = None
    allow_claims: StrList = []
    attribution: Attribution | None = None


class SopSpec(SopFrontMatter):
    """A loaded SOP: its front matter plus where it came from and its step sections."""

    path: Path | None = None
    lines: dict[str, int] = {}
    sections: dict[str, Section] = {}

    @property
    def step_list(self) -> list[Step]:
        """The declared steps, or the one implicit step `main`."""
        return list(self.steps) if self.steps else [Step(name=IMPLICIT_STEP)]

    @property
    def step_names(self) -> list[str]:
        return [step.name for step in self.step_list]

    def step(self, name: str) -> Step:
        for step in self.step_list:
            if step.name == name:
                return step
        raise KeyError(f"SOP {self.id} has no step {name!r}; steps: {', '.join(self.step_names)}")

    def section(self, step: str) -> Section:
        try:
            return self.sections[step]
        except KeyError:
            raise KeyError(f"SOP {self.id} has no `## {step}` section") from None

    def line_of(self, *keys: str | int) -> int:
        """The file line of a front-matter key path such as ("schedule", "cron"), else the closest parent's."""
        for end in range(len(keys), 0, -1):
            dotted = ".".join(str(k) for k in keys[:end])
            if dotted in self.lines:
                return self.lines[dotted]
        return 1
