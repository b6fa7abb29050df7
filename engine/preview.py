"""Preview any SOP step with real rows, through the engine's own parts: when it runs, its audience, its tasks, its text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import SopError
from engine.preview_campaign import preview_promotion
from engine.preview_customers import preview_customers
from engine.preview_events import preview_trigger
from engine.preview_groups import preview_community
from engine.preview_moments import preview_moments
from engine.preview_report import Preview
from soplang.spec import SopSpec, did_you_mean

__all__ = ["Preview", "PreviewRequest", "preview_sop"]


@dataclass(frozen=True)
class PreviewRequest:
    """What the operator asked for (`sopflow preview` options); None means the default."""

    day: dt.date
    step: str | None = None
    group: str | None = None  # chat_id
    customer: str | None = None  # external_userid
    campaign: str | None = None  # campaign code
    event: str | None = None  # event kind
    payload: Mapping[str, Any] | None = None


# Which options make sense for which shape of SOP, and what to use instead.
_OPTION_FOR = {
    "group": ("--group", "group SOPs (community, promotion)"),
    "customer": ("--customer", "1:1 SOPs (channel customer), lifecycle and trigger SOPs"),
    "campaign": ("--campaign", "promotion SOPs"),
    "event": ("--event", "trigger SOPs"),
    "payload": ("--payload", "trigger SOPs"),
}


def _allowed(spec: SopSpec) -> set[str]:
    if spec.kind == "trigger":
        return {"customer", "event", "payload"}
    if spec.kind == "promotion":
        return {"customer" if spec.channel == "customer" else "group", "campaign"}
    if spec.channel == "customer":
        return {"customer"}
    if spec.channel == "moments":
        return set()
    return {"group"}


def preview_sop(spec: SopSpec, request: PreviewRequest) -> Preview:
    """Preview one step of `spec` (default: its first) as a run on `request.day` would send it."""
    step = request.step or spec.step_names[0]
    if step not in spec.step_names:
        raise SopError(
            f"--step {step}: no such step{did_you_mean(step, spec.step_names)}; "
            f"this SOP has {', '.join(spec.step_names)}",
            sop_id=spec.id,
        )
    allowed = _allowed(spec)
    for name, (option, meant_for) in _OPTION_FOR.items():
        if getattr(request, name) is not None and name not in allowed:
            instead = " or ".join(_OPTION_FOR[a][0] for a in sorted(allowed))
            raise SopError(
                f"{option} is for {meant_for}; {spec.id} is a {spec.kind} SOP "
                f"(channel {spec.channel}): use {instead}",
                sop_id=spec.id,
            )
    if spec.kind == "trigger":
        return preview_trigger(
            spec,
            step,
            request.day,
            kind=request.event,
            customer=request.customer,
            payload=request.payload,
        )
    if spec.kind == "promotion":
        return preview_promotion(
            spec, step, request.day, request.group, request.campaign, request.customer
        )
    if spec.channel == "customer":
        return preview_customers(spec, step, request.day, request.customer)
    if spec.channel == "moments":
        return preview_moments(spec, step, request.day)
    return preview_community(spec, step, request.day, request.group)
