"""`sopflow lint`: every check an SOP file must pass, reported as `path:line: error: message` lines."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from jinja2 import TemplateSyntaxError

from core import clock
from core.settings import get_settings
from soplang.calendar_file import CALENDAR_FILE, horizon_warning, read_calendar
from soplang.coupon_rules import check_coupons
from soplang.folder import duplicate_id_problems, sop_files
from soplang.group_welcome import group_welcome_problems
from soplang.lint_attachments import check_attachments
from soplang.lint_steps import MAX_BYTES, check_step, frame_of
from soplang.needs import check_needs
from soplang.parse import parse_sop
from soplang.problems import ParsedSop, Problem
from soplang.spec import Section, SopSpec
from soplang.tag_rules import derive_file_problems
from soplang.template_scan import static_text

__all__ = [
    "ABSOLUTE_CLAIMS",
    "MAX_BYTES",
    "check_parsed",
    "find_claims",
    "lint_file",
    "lint_paths",
    "main_lint",
]

# 广告法 absolute claims. Only these exact words are flagged, so everyday words that merely
# start with 最 (最近, 最后, 最多, 最少, 最终) pass; 第一 followed by a counter or 时
# (第一次, 第一天, 第一批, 第一单, 第一时间 …) is an ordinal, not a ranking, and passes too.
ABSOLUTE_CLAIMS: tuple[str, ...] = (
    "国家级", "世界级", "全球级", "全网最低", "全网第一", "全球首发", "史上最",
    "最低价", "最低", "最高", "最好", "最佳", "最优", "最便宜", "最大", "最强", "最新",
    "最先进", "最受欢迎", "最火", "最热销", "最划算", "最正宗",
    "第一", "唯一", "首选", "独一无二", "顶级", "极品", "万能", "绝对", "永久",
    "100%", "百分之百",
)  # fmt: skip
_CLAIM_SUFFIX_EXCEPTIONS = {"第一": "(?![次天批件步个轮波期周站杯份口时单位])"}
_CLAIM_VARIANTS = {"100%": r"100\s*[%％]"}
_CLAIMS = re.compile(
    "|".join(
        f"(?P<c{index}>{_CLAIM_VARIANTS.get(word, re.escape(word))}{_CLAIM_SUFFIX_EXCEPTIONS.get(word, '')})"
        for index, word in sorted(enumerate(ABSOLUTE_CLAIMS), key=lambda pair: -len(pair[1]))
    )
)


def find_claims(text: str) -> Iterator[str]:
    """The absolute-claim words (as listed in ABSOLUTE_CLAIMS) that `text` uses, in order."""
    for match in _CLAIMS.finditer(text):
        yield ABSOLUTE_CLAIMS[int(match.lastgroup[1:])]  # type: ignore[index]


# ---------------------------------------------------------------- one step's text


def _claim_problems(parsed: ParsedSop, section: Section, allowed: set[str], used: set[str]) -> None:
    try:
        pieces = list(static_text(section.text))
    except TemplateSyntaxError:
        pieces = list(enumerate(section.text.split("\n"), start=1))
    for line, piece in pieces:
        for word in find_claims(piece):
            used.add(word)
            if word not in allowed:
                parsed.add(
                    section.first_line + line - 1,
                    f"`{word}` is an absolute claim (广告法 forbids 最/第一/国家级 …); "
                    "reword it, or add it to `allow_claims` if legal has approved it",
                )


# ---------------------------------------------------------------- one file


def _allowed_claims(parsed: ParsedSop) -> list[str]:
    if parsed.spec is not None:
        return list(parsed.spec.allow_claims)
    raw = (parsed.data or {}).get("allow_claims")
    return [str(w) for w in raw] if isinstance(raw, list) else []


def _file_problems(parsed: ParsedSop) -> None:
    spec = parsed.spec
    allowed = _allowed_claims(parsed)
    used: set[str] = set()
    for name, section in parsed.sections.items():
        _claim_problems(parsed, section, set(allowed), used)
        if spec is None or name in spec.step_names:  # a section of no step is reported as such
            check_step(parsed, frame_of(parsed, name), section)
    for index, word in enumerate(allowed):
        if word not in used:
            line = (
                spec.line_of("allow_claims", index)
                if spec
                else parsed.lines.get(f"allow_claims.{index}", 1)
            )
            parsed.add(
                line, f"`allow_claims` lists `{word}` but no step uses it; remove it", "warning"
            )
    if spec is not None:
        _spec_warnings(parsed, spec)
        check_needs(spec, parsed)
        check_attachments(spec, parsed)
        check_coupons(spec, parsed)


def _spec_warnings(parsed: ParsedSop, spec: SopSpec) -> None:
    if parsed.path.stem != spec.id:
        parsed.add(
            spec.line_of("id"),
            f"the file name should match the id: rename the file to {spec.id}.md",
            "warning",
        )
    if spec.schedule is not None:
        calendar, _ = read_calendar(get_settings().sop_dir / CALENDAR_FILE)
        today = clock.local_today(tz=get_settings().timezone)
        warning = horizon_warning(spec.schedule.days, today, calendar)
        if warning:
            parsed.add(spec.line_of("schedule", "days"), warning, "warning")


def check_parsed(parsed: ParsedSop) -> ParsedSop:
    """Add the checks that need the templates (syntax, variables, fields, sample render, size,
    claims, calendar) to a parsed file; `parsed` is returned with every problem found.

    The templates are checked even when the front matter is broken (see `lint_steps`), so one
    run of lint reports the front matter's errors and the templates' together.
    """
    try:
        if parsed.sections or parsed.spec is not None:
            _file_problems(parsed)
    except Exception as exc:  # one file lint cannot finish must not stop the others
        parsed.add(
            1, f"lint could not finish this file ({type(exc).__name__}: {exc}); please report it"
        )
    return parsed


def lint_file(path: str | Path) -> ParsedSop:
    """One file parsed once and checked; its `problems` hold everything found."""
    return check_parsed(parse_sop(path))


def lint_paths(paths: str | Path | Iterable[str | Path]) -> list[Problem]:
    """Every problem in the SOP files (directories are searched for `*.md`), sorted by path and line."""
    parsed = [lint_file(path) for path in sop_files(paths)]
    problems = [p for item in parsed for p in item.problems] + list(duplicate_id_problems(parsed))
    return sorted(problems)


def _calendar_file_problems(paths: str | Path | Iterable[str | Path]) -> list[Problem]:
    """The problems of each linted folder's calendar.yaml (holidays and 调休 per year), tiers.yaml
    and tags.yaml (member tiers and automatic tags) and group-welcome.yaml (进群欢迎语)."""
    folders = [paths] if isinstance(paths, str | Path) else list(paths)
    found = [
        read_calendar(Path(f) / CALENDAR_FILE)[1]
        + derive_file_problems(Path(f))
        + group_welcome_problems(Path(f))
        for f in folders
        if Path(f).is_dir()
    ]
    return [problem for problems in found for problem in problems]


def main_lint(paths: str | Path | Iterable[str | Path], out: TextIO | None = None) -> int:
    """Run lint and write its report; the exit code is 1 when any error was found, else 0."""
    stream = out or sys.stdout
    files = sop_files(paths)
    problems = sorted(lint_paths(files) + _calendar_file_problems(paths))
    for problem in problems:
        stream.write(f"{problem}\n")
    errors = sum(p.is_error for p in problems)
    warnings = len(problems) - errors
    if not files:
        stream.write("no SOP files found\n")
        return 1
    stream.write(f"{len(files)} file(s) checked: {errors} error(s), {warnings} warning(s)\n")
    return 1 if errors else 0
