"""Preview of group steps (community deals, promotion steps): the audience's groups rendered as a run would."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from sqlmodel import Session

from core.errors import SopError
from core.settings import get_settings
from engine.community_context import deal_slot, deals_of_day
from engine.compose import CommunityContent, Content
from engine.preview_report import Preview, plural, schedule_when, tally_batches
from models.audience import (
    GroupFilter,
    GroupTarget,
    first_group,
    group_id_ranges,
    groups_in_range,
)
from models.db import session_scope
from soplang.attachment_render import with_cards
from soplang.needs import needs_deals
from soplang.spec import GroupAudience, SopSpec

NOT_TODAY = "nothing is sent that day; the text below is what a run on a day it runs would say"


def heading(spec: SopSpec, step: str) -> str:
    """The first line: which SOP and step, among which steps."""
    steps = ", ".join(spec.step_names)
    return (
        f"SOP {spec.id} · {spec.title} ({spec.kind}, channel {spec.channel}) — "
        f"step `{step}` (steps: {steps})"
    )


def describe_groups(audience: GroupAudience | None) -> str:
    """A `groups:` audience in words."""
    parts = []
    if audience is not None and audience.theme:
        parts.append(f"theme {'/'.join(audience.theme)}")
    if audience is not None and audience.region:
        parts.append(f"region {'/'.join(audience.region)}")
    if audience is not None and audience.owner:
        parts.append(f"owner {'/'.join(audience.owner)}")
    return "live groups with " + ", ".join(parts) if parts else "every live group"


def preview_community(spec: SopSpec, step: str, day: dt.date, chat_id: str | None) -> Preview:
    """早报价 / 晚安心选 on `day`: each group's text lists the day's deals for its theme."""
    runs, when = schedule_when(spec, day)
    slot = deal_slot(spec)
    with session_scope(readonly=True) as session:
        deals = sum(len(found) for found in deals_of_day(day, slot, session=session).values())
    if needs_deals(spec, step):
        deal_line = (
            f"deals 特价: {plural(deals, f'`{slot}` deal')} in the database for {day.isoformat()}"
            + ("" if deals else ": every group gets nothing until that day's deals are loaded")
        )
    else:
        deal_line = "deals 特价: not needed by this step; every group gets its text, deals or not"
    lines = [when, deal_line]
    if not runs:
        lines.append(NOT_TODAY)
    content = CommunityContent(spec, step, day, slot)
    return preview_groups(spec, step, Preview(heading(spec, step), when=lines), content, chat_id)


def preview_groups(
    spec: SopSpec, step: str, preview: Preview, content: Content, chat_id: str | None
) -> Preview:
    """Fill `preview` with the step's audience, WeCom tasks and the text of one group."""
    audience = spec.audience.groups if spec.audience else None
    with session_scope(readonly=True) as session:
        tally = tally_batches(_batches(audience, session), content, chat_type="group")
        preview.tasks = tally.tasks
        preview.notes += tally.notes()
        if tally.targets:
            preview.audience = f"{plural(tally.targets, 'group')} ({describe_groups(audience)})"
        else:
            preview.audience = f"0 groups: no group matches ({describe_groups(audience)})"
        if chat_id:
            _show(preview, content, _chosen(spec, audience, chat_id, preview, session))
        elif tally.first is not None:
            group, preview.text = tally.first
            preview.shown_for = _label(group)
            if tally.first_target is not group:
                preview.notes.append(
                    f"the audience's first group, {_label(tally.first_target)}, gets nothing "
                    f"({tally.first_skip}); shown: the first group with a text"
                )
        elif tally.first_target is not None:
            preview.shown_for = _label(tally.first_target)
            preview.nothing = tally.first_skip
        else:
            stand_in = first_group(None, session=session)
            if stand_in is None:
                preview.audience += (
                    "; the database has no live groups (load some: `sopflow demo-data`)"
                )
                preview.nothing = "no group to render for"
            else:
                _show(preview, content, stand_in)
                preview.shown_for = f"{_label(stand_in)}, not in the audience, shown as an example"
    return preview


def _batches(audience: GroupFilter | None, session: Session) -> Iterator[list[GroupTarget]]:
    size = get_settings().batch_size
    for id_range in group_id_ranges(audience, batch_size=size, session=session):
        yield groups_in_range(audience, id_range, session=session)


def _chosen(
    spec: SopSpec,
    audience: GroupAudience | None,
    chat_id: str,
    preview: Preview,
    session: Session,
) -> GroupTarget:
    """The group `--group` names; one outside the audience is shown with a note saying so."""
    group = first_group(audience, session=session, chat_id=chat_id)
    if group is not None:
        return group
    group = first_group(None, session=session, chat_id=chat_id)
    if group is None:
        raise SopError(
            f"--group {chat_id}: no live group has this chat_id; leave --group out to see the "
            "audience's first group",
            sop_id=spec.id,
        )
    preview.notes.append(
        f"{_label(group)} is not in this SOP's audience ({describe_groups(audience)}): "
        "a run does not send to it"
    )
    return group


def _show(preview: Preview, content: Content, group: GroupTarget) -> None:
    rendered = content.render([group])
    preview.shown_for = _label(group)
    text, cards = rendered.texts.get(group.id), rendered.attachments.get(group.id, ())
    preview.text = None if text is None else with_cards(text, cards, get_settings().sop_dir)
    preview.nothing = rendered.skipped.get(group.id)


def _label(group: GroupTarget) -> str:
    return (
        f"{group.name} ({group.chat_id}, {group.region}, {group.theme}, owner {group.owner_userid})"
    )
