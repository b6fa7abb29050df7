"""What the sent-messages page shows: one page of mass-message tasks or robot posts, read under the lock."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from channels.emulator.config import JsonDict

if TYPE_CHECKING:
    from channels.emulator.core import WeComEmulator
    from channels.emulator.state import StoredMessage

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
SHOWN_TARGETS = 30  # recipients named on a card; the rest are counted
SHOWN_STAFF = 50  # staff members in the overview; the rest are counted
VIEWS = ("tasks", "robot")
CHAT_TYPES = ("single", "group")
# get_groupmsg_send_result's status codes, and `refused` for ids WeCom refused outright.
OUTCOMES = {0: "pending", 1: "sent", 2: "not_contact", 3: "capped"}


class QueryError(ValueError):
    """A query string the page cannot answer; the message says which parameter and what to write."""


@dataclass(frozen=True)
class SentQuery:
    """What the reader asked for: the view, filters (staff member, group/customer, chat type), the page."""

    view: str = "tasks"
    staff: str | None = None
    target: str | None = None
    chat_type: str | None = None
    page: int = 1
    size: int = PAGE_SIZE

    @classmethod
    def parse(cls, query: dict[str, str]) -> SentQuery:
        """The query of a query string's first values; anything unknown or malformed is a `QueryError`."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(query) - set(known))
        if unknown:
            raise QueryError(
                f"unknown query parameter {unknown[0]!r}; use {', '.join(known)} "
                "(e.g. ?staff=zhangwei.bj01&page=2)"
            )
        view = query.get("view", "tasks")
        if view not in VIEWS:
            raise QueryError(f"view must be tasks or robot, not {view!r}")
        chat_type = query.get("chat_type") or None
        if chat_type is not None and chat_type not in CHAT_TYPES:
            raise QueryError(f"chat_type must be single or group, not {chat_type!r}")
        return cls(
            view=view,
            staff=query.get("staff", "").strip() or None,
            target=query.get("target", "").strip() or None,
            chat_type=chat_type,
            page=_number(query, "page", 1, None),
            size=_number(query, "size", PAGE_SIZE, MAX_PAGE_SIZE),
        )

    def link(self, **changes: Any) -> str:
        """The query string of this query with `changes` (page 1 unless a page is given)."""
        changed = replace(self, **{"page": 1, **changes})
        pairs = [
            (f.name, getattr(changed, f.name))
            for f in fields(changed)
            if getattr(changed, f.name) not in (None, f.default)
        ]
        return "?" + urlencode(pairs) if pairs else "?"

    def wants(self, message: StoredMessage) -> bool:
        """Whether `message` passes the filters."""
        return (
            (self.staff is None or message.sender == self.staff)
            and (self.chat_type is None or message.chat_type == self.chat_type)
            and (self.target is None or self.target in message.targets)
        )


def _number(query: dict[str, str], name: str, default: int, most: int | None) -> int:
    raw = query.get(name, "").strip()
    if not raw:
        return default
    upper = f"1..{most}" if most else "a whole number from 1"
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"{name} must be {upper}, not {raw!r}") from None
    if value < 1 or (most is not None and value > most):
        raise QueryError(f"{name} must be {upper}, not {raw!r}")
    return value


@dataclass
class TaskCard:
    """One mass-message task as its staff member sees it, with the outcome per target."""

    msgid: str
    chat_type: str
    sender: str
    content: str
    attachments: list[JsonDict]
    create_time: float
    confirmed_at: float | None
    cancelled_at: float | None
    reminders: int
    dispatching: bool
    targets: int
    shown: list[tuple[str, str]]  # (target, outcome) of the first SHOWN_TARGETS
    outcomes: Counter[str]


@dataclass
class RobotCard:
    """One post a group robot accepted."""

    key: str
    time: float
    body: JsonDict


@dataclass
class SentPage:
    """One page of the sent-messages view and the overview around it."""

    query: SentQuery
    total: int  # tasks (or robot posts) that pass the filters
    tasks: list[TaskCard] = field(default_factory=list)
    robot: list[RobotCard] = field(default_factory=list)
    staff: list[tuple[str, int, int]] = field(default_factory=list)  # userid, single, group
    staff_count: int = 0
    task_count: int = 0
    robot_count: int = 0
    names: dict[str, str] = field(default_factory=dict)  # display names of the ids on the page
    state_file: str | None = None

    @property
    def pages(self) -> int:
        """How many pages the filtered list has (at least 1)."""
        return max(1, -(-self.total // self.query.size))


def sent_page(emulator: WeComEmulator, query: SentQuery) -> SentPage:
    """The page `query` asks for (call under the emulator's lock): one pass over the messages,
    per-target results for the page's cards only."""
    page = SentPage(query, total=0, state_file=_path(emulator))
    by_staff: Counter[tuple[str, str]] = Counter()
    first = (query.page - 1) * query.size
    chosen: list[StoredMessage] = []
    for message in emulator.newest_first():
        by_staff[message.sender, message.chat_type] += 1
        if query.view == "tasks" and query.wants(message):
            if first <= page.total < first + query.size:
                chosen.append(message)
            page.total += 1
    page.task_count = sum(by_staff.values())
    page.tasks = [_card(emulator, message) for message in chosen]
    page.staff, page.staff_count = _staff(by_staff)
    posts = [
        RobotCard(key, float(post.get("time", 0)), post)
        for key, kept in emulator.robot_posts.items()
        for post in kept
    ]
    page.robot_count = len(posts)
    if query.view == "robot":
        page.total = len(posts)
        posts.reverse()  # later posts of a robot first when their times are equal
        posts.sort(key=lambda card: card.time, reverse=True)
        page.robot = posts[first : first + query.size]
    page.names = _names(emulator.names, page)
    return page


def _card(emulator: WeComEmulator, message: StoredMessage) -> TaskCard:
    """A task's card: its confirmation, and each target's outcome as get_groupmsg_send_result says."""
    confirmed_at, rows = emulator.task_results(message)
    key = "external_userid" if message.chat_type == "single" else "chat_id"
    outcome = {row[key]: OUTCOMES[row["status"]] for row in rows}
    per_target = [(target, outcome.get(target, "refused")) for target in message.targets]
    return TaskCard(
        msgid=message.msgid,
        chat_type=message.chat_type,
        sender=message.sender,
        content=message.content,
        attachments=message.attachments,
        create_time=message.create_time,
        confirmed_at=confirmed_at,
        cancelled_at=message.cancelled_at,
        reminders=len(message.reminders),
        dispatching=emulator.clock() < message.create_time + emulator.config.dispatch_seconds,
        targets=len(message.targets),
        shown=per_target[:SHOWN_TARGETS],
        outcomes=Counter(kind for _, kind in per_target),
    )


def _staff(by_staff: Counter[tuple[str, str]]) -> tuple[list[tuple[str, int, int]], int]:
    """The staff members with the most tasks (userid, single, group), and how many there are."""
    counts: dict[str, list[int]] = {}
    for (sender, chat_type), n in by_staff.items():
        counts.setdefault(sender, [0, 0])[chat_type == "group"] += n
    rows = sorted(counts.items(), key=lambda item: (-sum(item[1]), item[0]))
    return [(userid, single, group) for userid, (single, group) in rows[:SHOWN_STAFF]], len(rows)


def _names(names: dict[str, str], page: SentPage) -> dict[str, str]:
    """The display names of the ids the page shows."""
    ids = {userid for userid, _, _ in page.staff} | {page.query.staff, page.query.target}
    for card in page.tasks:
        ids.add(card.sender)
        ids.update(target for target, _ in card.shown)
    ids.update(card.key for card in page.robot)
    return {i: names[i] for i in ids if i is not None and i in names}


def _path(emulator: WeComEmulator) -> str | None:
    path = emulator.state_path
    return str(path) if path is not None else None
