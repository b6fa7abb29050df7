"""Which SOPs a run takes: the trigger SOPs by their event, and whether an SOP runs on a given day."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from soplang.calendar_file import runs_on
from soplang.folder import sop_files
from soplang.lint import check_parsed
from soplang.loader import checked_spec
from soplang.parse import parse_sop
from soplang.spec import TRIGGER_EVENTS, SopSpec


def trigger_sops(sop_dir: str | Path) -> dict[str, list[SopSpec]]:
    """The fully checked trigger SOPs by the event they are `on`; a broken trigger file stops the drain.

    Files of other kinds are only parsed, so a half-written promotion never blocks the triggers.
    """
    found: dict[str, list[SopSpec]] = {}
    for path in sop_files(sop_dir):
        parsed = parse_sop(path)
        if parsed.kind != "trigger":
            continue
        spec = checked_spec(check_parsed(parsed))
        if spec.on is not None:  # always set: lint refuses a trigger without `on`
            found.setdefault(spec.on, []).append(spec)
    return {on: found[on] for on in TRIGGER_EVENTS if on in found}


def runs_that_day(spec: SopSpec, day: dt.date) -> bool:
    """Whether the SOP's `days` rule (China's official calendar, sop/calendar.yaml) includes `day`."""
    return spec.schedule is None or runs_on(day, spec.schedule.days)
