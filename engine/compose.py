"""Render an occurrence's texts: one content source per kind of SOP, texts keyed by target."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from channels.attachments import Attachment
from core.settings import get_settings
from engine.attachments import segment_attachments
from engine.campaign import group_step_context
from engine.community_context import deals_for_group, deals_of_day, group_context
from engine.customer_context import segment_renderer
from engine.lifecycle_context import lifecycle_context
from engine.timing import timed
from models.audience import CustomerTarget, GroupTarget
from models.db import session_scope
from soplang.attachment_render import compile_attachments, with_cards
from soplang.needs import needs_deals
from soplang.spec import SopSpec
from soplang.template import compile_step, render


class Composed(NamedTuple):
    """A recorded touch with its text and attachments, ready to dispatch."""

    delivery_id: int
    target_id: str
    sender: str | None
    content: str
    attachments: tuple[Attachment, ...] = ()


@dataclass
class Rendered:
    """A batch's texts by target id, and why targets got none (recorded as skipped)."""

    texts: dict[int, str] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)  # target id -> reason
    sample: str | None = None
    sample_for: str | None = None  # whose text the sample is, in the operator's words
    # target id -> its attachments (targets alike share one tuple); absent: none
    attachments: dict[int, tuple[Attachment, ...]] = field(default_factory=dict)
    sample_attachments: tuple[Attachment, ...] = ()

    def keep_sample(self, text: str, label: str, attachments: tuple[Attachment, ...] = ()) -> None:
        """The first target's text as the run's sample, its attachments one line each after it."""
        if self.sample is None:
            self.sample = with_cards(text, attachments, get_settings().sop_dir)
            self.sample_for, self.sample_attachments = label, attachments

    def clear(self) -> None:
        """Drop the texts once recorded (a batch of 10^5 need not outlive its task)."""
        self.texts.clear()
        self.skipped.clear()
        self.attachments.clear()


class Content(Protocol):
    """What an occurrence sends: renders a batch of its targets."""

    def render(self, targets: Sequence[Any]) -> Rendered: ...


@dataclass(frozen=True)
class CommunityContent:
    """A community step per group: 早报价 / 晚安心选 list the day's deals for its theme and region
    and skip groups without any; a step that needs no deals (quiz, vote, topic) goes to every group.
    """

    spec: SopSpec
    step: str
    day: dt.date
    slot: str

    def render(self, targets: Sequence[GroupTarget]) -> Rendered:
        rendered = Rendered()
        if not targets:
            return rendered
        compiled = compile_step(self.spec, self.step)
        attachments = compile_attachments(self.spec, self.step)
        reason = f"no {self.slot} deals today for this group's theme"
        needs = needs_deals(self.spec, self.step)
        deals: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
        if needs:
            with session_scope(readonly=True) as session:
                deals = deals_of_day(self.day, self.slot, session=session)
        for group in targets:
            group_deals = deals_for_group(deals, group)
            if needs and not group_deals:
                rendered.skipped[group.id] = reason
                continue
            context = group_context(
                group,
                group_deals,
                day=self.day,
                slot=self.slot,
                sop_id=self.spec.id,
                sop_title=self.spec.title,
            )
            text = str(render(compiled, context))
            rendered.texts[group.id] = text
            if attachments:
                rendered.attachments[group.id] = attachments.render(context)
            rendered.keep_sample(text, group.name, rendered.attachments.get(group.id, ()))
        return rendered


@dataclass(frozen=True)
class CampaignContent:
    """A promotion step: the campaign, its items and (recap) the burst's sales, per group."""

    spec: SopSpec
    step: str
    day: dt.date
    shared: Mapping[str, Any]

    def render(self, targets: Sequence[GroupTarget]) -> Rendered:
        rendered = Rendered()
        if not targets:
            return rendered
        compiled = compile_step(self.spec, self.step)
        attachments = compile_attachments(self.spec, self.step)
        for group in targets:
            context = group_step_context(group, dict(self.shared), spec=self.spec, day=self.day)
            text = str(render(compiled, context))
            rendered.texts[group.id] = text
            if attachments:
                rendered.attachments[group.id] = attachments.render(context)
            rendered.keep_sample(text, group.name, rendered.attachments.get(group.id, ()))
        return rendered


@dataclass(frozen=True)
class CampaignCustomerContent:
    """A promotion step sent 1:1: the campaign, its items and (recap) the burst's sales, per
    customer; customers who read the same fields share one text."""

    spec: SopSpec
    step: str
    day: dt.date
    shared: Mapping[str, Any]

    def render(self, targets: Sequence[CustomerTarget]) -> Rendered:
        rendered = Rendered()
        if not targets:
            return rendered
        render_for = segment_renderer(
            compile_step(self.spec, self.step),
            day=self.day,
            sop_id=self.spec.id,
            sop_title=self.spec.title,
            shared=self.shared,
        )
        with timed("render"):
            rendered.texts = {c.id: render_for(c) for c in targets}
            rendered.attachments = segment_attachments(
                compile_attachments(self.spec, self.step),
                targets,
                day=self.day,
                sop_id=self.spec.id,
                sop_title=self.spec.title,
                shared=self.shared,
            )
        first = targets[0]
        rendered.keep_sample(
            rendered.texts[first.id],
            f"customer {first.external_userid}",
            rendered.attachments.get(first.id, ()),
        )
        return rendered


@dataclass(frozen=True)
class CustomerContent:
    """A 1:1 step; customers who read the same fields share one text (one render per segment)."""

    spec: SopSpec
    step: str
    day: dt.date

    def render(self, targets: Sequence[CustomerTarget]) -> Rendered:
        rendered = Rendered()
        if not targets:
            return rendered
        render_for = segment_renderer(
            compile_step(self.spec, self.step),
            day=self.day,
            sop_id=self.spec.id,
            sop_title=self.spec.title,
        )
        with timed("render"):
            extra = lifecycle_context(self.spec, self.step, targets, day=self.day)
            rendered.texts = {c.id: render_for(c, extra.get(c.id)) for c in targets}
            rendered.attachments = segment_attachments(
                compile_attachments(self.spec, self.step),
                targets,
                day=self.day,
                sop_id=self.spec.id,
                sop_title=self.spec.title,
                extra=extra,
            )
        first = targets[0]
        rendered.keep_sample(
            rendered.texts[first.id],
            f"customer {first.external_userid}",
            rendered.attachments.get(first.id, ()),
        )
        return rendered
