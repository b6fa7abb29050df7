"""Apply sop/group-welcome.yaml to WeCom: add the template once, edit it when the file changes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from channels.base import Channel
from channels.wecom import WeComClient
from channels.wecom_group_welcome import add_template, edit_template
from core.errors import SopDefinitionError
from models.db import session_scope
from models.media import GroupWelcomeTemplate
from soplang.group_welcome import GROUP_WELCOME_FILE, load_group_welcome


@dataclass(frozen=True)
class Applied:
    """What applying the file did: `added`, `edited`, `unchanged` or `no file`."""

    action: str
    template_id: str | None = None

    def __str__(self) -> str:
        if self.template_id is None:
            return f"group welcome: {self.action}"
        return f"group welcome: {self.action} (template_id {self.template_id})"


def apply_group_welcome(
    channel: Channel, sop_dir: Path, *, now: dt.datetime, dry_run: bool = False
) -> Applied:
    """Add the template the first time, edit it when the file's content (text, fields, picture
    bytes) changed, do nothing when it did not. The template_id and content hash are written
    only after WeCom answered ok; `dry_run` says what would happen and calls nothing."""
    welcome = load_group_welcome(sop_dir)
    if welcome is None:
        return Applied(f"no file ({sop_dir / GROUP_WELCOME_FILE}); nothing to do")
    digest = welcome.content_hash(sop_dir)
    with session_scope(readonly=True) as session:
        kept = session.get(GroupWelcomeTemplate, welcome.name)
        known = (kept.template_id, kept.content_hash) if kept else None
    if known and known[1] == digest:
        return Applied("unchanged", known[0])
    if dry_run:
        return Applied("would edit" if known else "would add", known[0] if known else None)
    if not isinstance(channel, WeComClient):
        raise SopDefinitionError(
            f"the group welcome lives in WeCom, not the {channel.name} channel: "
            "set SOPFLOW_CHANNEL=wecom (and WECOM_CORP_ID / WECOM_CORP_SECRET)"
        )
    if known:
        edit_template(channel, known[0], welcome.text, welcome.attachment)
        template_id, action = known[0], "edited"
    else:
        template_id = add_template(channel, welcome.text, welcome.attachment)
        action = "added"
    with session_scope() as session:
        row = session.get(GroupWelcomeTemplate, welcome.name) or GroupWelcomeTemplate(
            name=welcome.name, template_id=template_id, content_hash=digest, applied_at=now
        )
        row.template_id, row.content_hash, row.applied_at = template_id, digest, now
        session.add(row)
    return Applied(action, template_id)
