"""sop/calendar.yaml: ops' holidays and 调休 over the package, plain weekdays with a warning beyond both."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest

from core import clock
from core.errors import CalendarError
from core.settings import PROJECT_ROOT, reset_settings
from soplang.calendar_file import (
    CALENDAR_FILE,
    horizon_warning,
    load_calendar,
    read_calendar,
    runs_on,
)
from soplang.lint import main_lint
from tests.factories import workdays_community_sops

# Test data only, not the official schedule: a weekday off and a Saturday worked in 2027.
FICTIONAL_2027 = """\
2027:
  holidays:
    2027-01-01: 元旦
    2027-01-06: 测试假日
  workdays:
    2027-01-09: 测试调休
"""


@pytest.fixture
def sop_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped SOPs that the settings point at, with morning-price on workdays."""
    folder = workdays_community_sops(tmp_path / "sop")
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder))
    reset_settings()
    yield folder
    reset_settings()


def write_calendar(folder: Path, text: str) -> Path:
    path = folder / CALENDAR_FILE
    path.write_text(text, encoding="utf-8")
    return path


def test_a_listed_year_wins_over_the_package_holiday_weekdays_off_and_makeup_saturdays_worked(
    tmp_path: Path,
) -> None:
    """For a year the file lists, its days decide and every other day is Mon–Fri, even where the package knows better."""
    calendar = load_calendar(
        write_calendar(
            tmp_path,
            "2026:\n  holidays:\n    2026-11-25: 店庆\n  workdays:\n    2026-11-28: 店庆调休\n",
        )
    )

    assert clock.is_workday(dt.date(2026, 11, 25))  # a Wednesday, by the package alone
    assert not clock.is_workday(dt.date(2026, 11, 25), calendar)
    assert clock.is_workday(dt.date(2026, 11, 28), calendar)  # a Saturday
    assert clock.is_workday(dt.date(2026, 10, 10))  # the package's 国庆 调休 Saturday …
    assert not clock.is_workday(dt.date(2026, 10, 10), calendar)  # … is not in the file's 2026
    assert clock.workday(dt.date(2026, 11, 25), calendar).warning is None


def test_a_year_only_the_file_knows_follows_the_file_without_a_warning(tmp_path: Path) -> None:
    calendar = load_calendar(write_calendar(tmp_path, FICTIONAL_2027))

    assert clock.workday(dt.date(2027, 1, 6), calendar) == clock.Workday(False)  # a Wednesday
    assert clock.workday(dt.date(2027, 1, 9), calendar) == clock.Workday(True)  # a Saturday
    assert clock.workday(dt.date(2027, 1, 7), calendar) == clock.Workday(True)
    assert not clock.runs_on(dt.date(2027, 1, 9), "weekends", calendar)


def test_a_year_no_calendar_knows_follows_weekdays_with_a_warning_instead_of_raising(
    tmp_path: Path,
) -> None:
    calendar = load_calendar(tmp_path / CALENDAR_FILE)  # no file: no years

    monday, saturday = (
        clock.workday(dt.date(2027, 1, 4), calendar),
        clock.workday(dt.date(2027, 1, 2), calendar),
    )

    assert monday.is_workday and not saturday.is_workday
    assert monday.warning and "no official holiday calendar is known for 2027" in monday.warning
    assert "add 2027 to" in monday.warning and str(tmp_path / CALENDAR_FILE) in monday.warning
    assert clock.runs_on(dt.date(2027, 1, 2), "weekends")
    assert clock.workday(dt.date(2026, 10, 1)).warning is None  # the package knows 2026


def test_the_settings_calendar_file_decides_and_is_reread_when_it_changes(sop_dir: Path) -> None:
    assert runs_on(dt.date(2027, 1, 6), "workdays")  # unknown year: a Wednesday is worked

    write_calendar(sop_dir, FICTIONAL_2027)

    assert not runs_on(dt.date(2027, 1, 6), "workdays")
    assert runs_on(dt.date(2027, 1, 9), "workdays")


BROKEN = """\
2027:
  holidays:
    2027-02-30: 春节
    2028-01-01: 元旦
    2027-10-01: 国庆节
  workdays:
    2027-10-01: 国庆节调休
  holiday:
    2027-05-01: 劳动节
20x7:
  holidays: {}
2029:
"""


def test_lint_reports_each_calendar_mistake_on_its_line(sop_dir: Path) -> None:
    path = write_calendar(sop_dir, BROKEN)
    out = io.StringIO()

    code = main_lint(sop_dir, out)

    errors = [line for line in out.getvalue().splitlines() if ": error: " in line]
    assert code == 1
    assert errors == [
        f"{path}:3: error: `2027-02-30` is not a date; write it as YYYY-MM-DD, e.g. 2027-01-01",
        f"{path}:4: error: 2028-01-01 is listed under 2027; move it under 2028",
        f"{path}:7: error: 2027-10-01 is both a holiday and a workday (also under `holidays` "
        "on line 5); keep the one the official notice says",
        f"{path}:8: error: unknown key `holiday` under 2027 (did you mean `holidays`?); "
        "use `holidays` (days off) or `workdays` (make-up workdays, 调休)",
        f"{path}:10: error: `20x7` is not a year; write each year as four digits, e.g. `2027:`",
        f"{path}:12: error: 2029 lists no days; under it write `holidays:` and `workdays:` "
        "(`2027-01-01: 元旦`), or remove the year until it is published",
    ]
    with pytest.raises(CalendarError) as refused:
        runs_on(dt.date(2027, 1, 4), "workdays")  # a run refuses a broken file, naming its lines
    assert f"{path}:3: error:" in str(refused.value)


def test_the_shipped_calendar_file_is_clean() -> None:
    calendar, problems = read_calendar(PROJECT_ROOT / "sop" / CALENDAR_FILE)

    assert problems == []
    assert calendar.years == frozenset()  # 2027's notice is not out: nothing is invented


def test_lint_warns_a_month_before_a_days_rule_reaches_a_year_no_calendar_knows() -> None:
    nothing = clock.WorkCalendar()
    warning = horizon_warning("workdays", dt.date(2026, 12, 1), nothing)

    assert warning is not None
    assert warning.startswith(
        "`days: workdays` reaches 2027 in 31 day(s), on 2027-01-01, and no official holiday "
        "calendar is known for 2027"
    )
    assert horizon_warning("workdays", dt.date(2026, 11, 30), nothing) is None
    assert horizon_warning("everyday", dt.date(2026, 12, 1), nothing) is None
    assert "reaches 2027 today" in str(horizon_warning("weekends", dt.date(2027, 3, 1), nothing))
    known = clock.WorkCalendar(frozenset({2027}), {dt.date(2027, 1, 1): False})
    assert horizon_warning("workdays", dt.date(2026, 12, 1), known) is None


def test_lint_puts_the_calendar_warning_on_the_days_line_and_a_listed_year_silences_it(
    sop_dir: Path,
) -> None:
    today = clock.local_today()
    expected = horizon_warning(
        "workdays", today, clock.WorkCalendar(source=str(sop_dir / CALENDAR_FILE))
    )
    assert (
        expected is not None
    )  # the pinned chinese-calendar ends in 2026; today is past 2026-12-01
    out = io.StringIO()

    assert main_lint(sop_dir, out) == 0  # a warning, not an error
    price = sop_dir / "community" / "morning-price.md"
    assert f"{price}:10: warning: {expected}" in out.getvalue().splitlines()

    years = sorted({today.year, today.year + 1})
    write_calendar(sop_dir, "".join(f"{y}:\n  holidays:\n    {y}-01-01: 元旦\n" for y in years))
    out = io.StringIO()
    main_lint(sop_dir, out)
    assert "calendar is known" not in out.getvalue()


def test_the_ops_guide_example_is_a_calendar_lint_accepts(tmp_path: Path) -> None:
    guide = (PROJECT_ROOT / "sop" / "README.md").read_text(encoding="utf-8")
    section = guide.split("### 节假日与调休日历", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]

    calendar, problems = read_calendar(write_calendar(tmp_path, example))

    assert problems == [] and calendar.years == {2027}
    assert calendar.changes[dt.date(2027, 2, 20)] is True


BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9 if prev else ['x'] * 9)}]\n"
    for prev, name in zip(["", "a", "b", "c", "d", "e"], "abcdef", strict=True)
)


@pytest.mark.parametrize(
    ("content", "line", "says"),
    [
        (b"2027:\n  holidays:\n    2027-01-01: \xd4\xaa\xb5\xa9\n", 3, "not UTF-8"),
        (b"2027:\n  holidays:\n    2027-01-01: " + b"[" * 5000 + b"]" * 5000, 3, "32 levels"),
        (BOMB.encode(), 5, "10,000 values"),
        (b"2027:\n" + b"  # padding\n" * 30_000, 1, "at most 256 KB"),
    ],
    ids=["gbk", "deep", "alias-bomb", "huge"],
)
def test_a_hostile_calendar_file_is_one_clear_error_on_its_line(
    tmp_path: Path, content: bytes, line: int, says: str
) -> None:
    path = tmp_path / CALENDAR_FILE
    path.write_bytes(content)

    calendar, problems = read_calendar(path)

    assert [(p.line, p.severity) for p in problems] == [(line, "error")]
    assert says in problems[0].message and calendar.years == frozenset()
