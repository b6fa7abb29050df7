"""China's holidays and make-up workdays (调休) per year as ops publish them in sop/calendar.yaml."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

from core import clock
from core.errors import CalendarError
from core.settings import get_settings
from soplang.file_text import read_text
from soplang.problems import ParsedSop, Problem
from soplang.safe_yaml import SopYamlLoader
from soplang.spec import did_you_mean

CALENDAR_FILE = "calendar.yaml"
KINDS = {"holidays": False, "workdays": True}  # a listed day is worked or not
# Lint warns a month ahead: on 12-01 already about 01-01, so ops have at least 30 days to add it.
HORIZON_DAYS = 31


def read_calendar(path: Path) -> tuple[clock.WorkCalendar, list[Problem]]:
    """The calendar `path` lists (none when the file is absent) and every problem found in it."""
    found = _Reader(path)
    if path.is_file():
        file = ParsedSop(path=path)
        text = read_text(
            path, file, what="the calendar file", kind="a holiday calendar", empty_ok=True
        )
        found.problems.extend(file.problems)
        if text is not None:
            found.read(text)
    calendar = clock.WorkCalendar(frozenset(found.years), found.changes, str(path))
    return calendar, found.problems


def load_calendar(path: Path) -> clock.WorkCalendar:
    """The calendar `path` lists; a file with errors raises CalendarError naming each line."""
    calendar, problems = read_calendar(path)
    errors = [str(p) for p in problems if p.is_error]
    if errors:
        raise CalendarError(
            "the holiday calendar cannot be used; fix it (`sopflow lint` checks it):\n"
            + "\n".join(errors)
        )
    return calendar


class _CalendarLoader(SopYamlLoader):
    """The SOP loader's limits on depth, aliases and size, named for this file."""

    what = "the calendar file"


_cache: dict[tuple[Path, int], clock.WorkCalendar] = {}


def settings_calendar() -> clock.WorkCalendar:
    """The calendar file in the settings' SOP folder, read again whenever it changes."""
    path = get_settings().sop_dir / CALENDAR_FILE
    stamp = path.stat().st_mtime_ns if path.is_file() else 0
    if (path, stamp) not in _cache:
        _cache.clear()
        _cache[(path, stamp)] = load_calendar(path)
    return _cache[(path, stamp)]


def runs_on(day: dt.date, rule: str) -> bool:
    """Whether an SOP with `days: rule` runs on `day`, by the package and the settings' calendar file."""
    return clock.runs_on(day, rule, settings_calendar())


def calendar_warning(day: dt.date) -> str | None:
    """The warning for a run on `day` when no official calendar knows its year, else None."""
    return clock.workday(day, settings_calendar()).warning


def horizon_warning(
    rule: str, today: dt.date, calendar: clock.WorkCalendar, days: int = HORIZON_DAYS
) -> str | None:
    """What lint says when an SOP with `days: rule` reaches, within `days` of `today`, a year that
    no official calendar knows; None when every year it reaches is known."""
    if rule == "everyday":
        return None
    for offset in range(days + 1):
        day = today + dt.timedelta(days=offset)
        if day.year not in calendar.years and not clock.package_knows(day.year):
            when = "today" if offset == 0 else f"in {offset} day(s), on {day.isoformat()}"
            return f"`days: {rule}` reaches {day.year} {when}, and " + clock.unknown_year_warning(
                day.year, calendar
            )
    return None


class _Reader:
    """Walks the YAML nodes of a calendar file, keeping each key's line for its problems."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.years: set[int] = set()
        self.changes: dict[dt.date, bool] = {}
        self.problems: list[Problem] = []
        self._kind_of: dict[dt.date, tuple[str, int]] = {}

    def add(self, node: yaml.Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(Problem(str(self.path), line, "error", message))

    def read(self, text: str) -> None:
        loader = _CalendarLoader(text)
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            self.problems.append(
                Problem(
                    str(self.path),
                    mark.line + 1 if mark else 1,
                    "error",
                    f"not valid YAML ({problem}); indent with spaces and write `2027-01-01: 元旦`",
                )
            )
            return
        finally:
            loader.dispose()
        if root is None:
            return
        if not isinstance(root, yaml.MappingNode):
            self.add(root, "write one year per top-level key, e.g. `2027:`")
            return
        for year_node, body in self._pairs(root, "year"):
            self._year(year_node, body)

    def _pairs(self, node: yaml.MappingNode, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
        seen: dict[str, int] = {}
        pairs = []
        for key, value in node.value:
            text = str(key.value)
            if text in seen:
                self.add(
                    key, f"{what} `{text}` is written twice (first on line {seen[text]}); keep one"
                )
                continue
            seen[text] = key.start_mark.line + 1
            pairs.append((key, value))
        return pairs

    def _year(self, key: yaml.Node, body: yaml.Node) -> None:
        text = str(key.value)
        if not (isinstance(key, yaml.ScalarNode) and text.isdigit() and len(text) == 4):
            self.add(key, f"`{text}` is not a year; write each year as four digits, e.g. `2027:`")
            return
        year = int(text)
        if not isinstance(body, yaml.MappingNode) or not body.value:
            self.add(
                key,
                f"{year} lists no days; under it write `holidays:` and `workdays:` "
                "(`2027-01-01: 元旦`), or remove the year until it is published",
            )
            return
        self.years.add(year)
        for kind_node, days in self._pairs(body, "key"):
            kind = str(kind_node.value)
            if kind not in KINDS:
                self.add(
                    kind_node,
                    f"unknown key `{kind}` under {year}{did_you_mean(kind, list(KINDS))}; "
                    "use `holidays` (days off) or `workdays` (make-up workdays, 调休)",
                )
            elif not isinstance(days, yaml.MappingNode):
                self.add(kind_node, f"write `{kind}` as one `2027-01-01: name` per line")
            else:
                for day_node, name in self._pairs(days, "day"):
                    self._day(year, kind, day_node, name)

    def _day(self, year: int, kind: str, key: yaml.Node, name: yaml.Node) -> None:
        text = str(key.value)
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            self.add(key, f"`{text}` is not a date; write it as YYYY-MM-DD, e.g. {year}-01-01")
            return
        if day.year != year:
            self.add(key, f"{text} is listed under {year}; move it under {day.year}")
            return
        if not (isinstance(name, yaml.ScalarNode) and str(name.value).strip()):
            self.add(key, f"give {text} a name, e.g. `{text}: 春节`")
        line = key.start_mark.line + 1
        if day in self._kind_of:
            first, first_line = self._kind_of[day]
            if first != kind:
                self.add(
                    key,
                    f"{text} is both a holiday and a workday (also under `{first}` on line "
                    f"{first_line}); keep the one the official notice says",
                )
            return
        self._kind_of[day] = (kind, line)
        self.changes[day] = KINDS[kind]
