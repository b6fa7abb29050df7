"""Preview an SOP step with real rows: the rendered text, the recipients and the WeCom tasks it creates."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field

from sqlmodel import Session

from channels.base import MAX_CHAT_IDS
from core.errors import SopError
from engine.community_context import deal_slot, deals_for_group, deals_of_day, render_for_group
from engine.compose import CommunityContent
from models.audience import first_group, group_id_ranges, groups_in_range
from models.db import session_scope
from soplang.spec import SopSpec
from soplang.template import compile_step


@dataclass
class Preview:
    step: str
    recipient: str
    text: str
    recipients: int
    without_deals: int = 0
    tasks_per_sender: Counter[str] = field(default_factory=Counter)

    def report(self) -> str:
        senders = ", ".join(f"{s} {n}" for s, n in self.tasks_per_sender.most_common())
        lines = [
            f"step `{self.step}` for {self.recipient}:",
            "",
            self.text,
            "",
            f"recipients: {self.recipients} group(s)"
            + (f", {self.without_deals} skipped for lack of deals" if self.without_deals else ""),
            f"WeCom mass-message tasks to confirm: {sum(self.tasks_per_sender.values())} "
            f"across {len(self.tasks_per_sender)} staff member(s)"
            + (f" ({senders})" if senders else ""),
        ]
        return "\n".join(lines)


def preview_step(
    spec: SopSpec,
    *,
    step: str | None = None,
    day: dt.date,
    chat_id: str | None = None,
    customer: str | None = None,
) -> Preview:
    """Render `step` of `spec` for a real group (the first match, or `chat_id`) on `day`."""
    step = step or spec.step_names[0]
    if step not in spec.step_names:
        raise SopError(
            f"no step `{step}`; this SOP has {', '.join(spec.step_names)}", sop_id=spec.id
        )
    if spec.kind != "community" or customer:
        raise SopError(
            f"preview of kind `{spec.kind}` / channel `{spec.channel}` for customers comes with "
            "the delivery engine; this version previews community group SOPs",
            sop_id=spec.id,
        )
    return _preview_groups(spec, step, day, chat_id)


def _preview_groups(spec: SopSpec, step: str, day: dt.date, chat_id: str | None) -> Preview:
    compiled = compile_step(spec, step)
    slot = deal_slot(spec)
    with session_scope() as session:
        shown = first_group(spec.audience.groups, session=session, chat_id=chat_id)
        if shown is None:
            problem = (
                f"group {chat_id} is not in the database or not in this SOP's audience"
                if chat_id
                else "no group in the database matches this SOP's audience; load one with `sopflow demo-data`"
            )
            raise SopError(problem, sop_id=spec.id)
        shown_deals = deals_for_group(deals_of_day(day, slot, session=session), shown)
        if not shown_deals:
            raise SopError(
                f"no {slot} deals on {day} for {shown.name} ({shown.theme})", sop_id=spec.id
            )
        text = render_for_group(compiled, spec, shown, shown_deals, day=day, slot=slot)
        tally = tally_group_step(spec, step, day, session=session)
    return Preview(
        step,
        f"{shown.name} ({shown.chat_id}) on {day}",
        text,
        tally.recipients,
        tally.without_deals,
        tally.tasks_per_sender,
    )


@dataclass
class StepTally:
    """A community step on a day over its whole audience: what it sends and who must confirm it."""

    recipients: int = 0
    without_deals: int = 0
    tasks_per_sender: Counter[str] = field(default_factory=Counter)
    sample: str | None = None  # the first rendered text
    sample_for: str | None = None  # the group it was rendered for


def tally_group_step(spec: SopSpec, step: str, day: dt.date, *, session: Session) -> StepTally:
    """Render `step` for every group of the audience on `day`; count recipients and tasks per sender."""
    content = CommunityContent(spec, step, day, deal_slot(spec))
    audience = spec.audience.groups if spec.audience else None
    tally = StepTally()
    targets_per_call: Counter[tuple[str, str]] = Counter()
    for id_range in group_id_ranges(audience, batch_size=5000, session=session):
        groups = groups_in_range(audience, id_range, session=session)
        rendered = content.render(groups)
        tally.recipients += len(groups)
        tally.without_deals += len(rendered.skipped)
        for group in groups:
            if group.id in rendered.texts:
                targets_per_call[(group.owner_userid, rendered.texts[group.id])] += 1
        if tally.sample is None and rendered.sample is not None:
            tally.sample, tally.sample_for = rendered.sample, rendered.sample_for
    # One add_msg_template call, i.e. one task for the sender to confirm, per sender, text and
    # 2,000 chat ids.
    for (sender, _text), groups_sent in targets_per_call.items():
        tally.tasks_per_sender[sender] += math.ceil(groups_sent / MAX_CHAT_IDS)
    return tally
