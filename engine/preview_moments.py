"""Preview a moments (朋友圈) step: when it runs, which staff get the task, the text they post."""

from __future__ import annotations

import datetime as dt

from engine.moments import chosen_staff
from engine.preview_groups import NOT_TODAY, heading
from engine.preview_report import Preview, plural, schedule_when
from models.db import session_scope
from soplang.context import step_basics
from soplang.spec import SopSpec
from soplang.staff_audience import StaffAudience
from soplang.template import compile_step, render


def describe_staff(audience: StaffAudience) -> str:
    parts = [
        f"{name} {', '.join(values)}"
        for name, values in (
            ("store", audience.store),
            ("region", audience.region),
            ("role", audience.role),
        )
        if values
    ]
    return "; ".join(parts) or "all staff"


def preview_moments(spec: SopSpec, step: str, day: dt.date) -> Preview:
    """The staff the audience names today and the one text every one of them is asked to post."""
    runs, when = schedule_when(spec, day)
    audience = (spec.audience.staff if spec.audience else None) or StaffAudience()
    with session_scope(readonly=True) as session:
        staff = chosen_staff(audience, session=session)
    preview = Preview(heading(spec, step), when=[when] if runs else [when, NOT_TODAY])
    preview.audience = f"{plural(len(staff), 'staff member')} ({describe_staff(audience)})"
    preview.notes.append(
        "one add_moment_task (企业朋友圈) for all of them; each posts it from their own WeCom"
        + (f": {', '.join(staff[:5])}{' …' if len(staff) > 5 else ''}" if staff else "")
    )
    preview.shown_for = "every staff member (the same text)"
    preview.text = render(compile_step(spec, step), step_basics(day, spec.id, spec.title))
    return preview
