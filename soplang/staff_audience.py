"""Moments (朋友圈) SOPs: the staff audience (`audience: {staff: {store, region, role}}`) and the
lint rules of `channel: moments`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

if TYPE_CHECKING:
    from soplang.problems import ParsedSop
    from soplang.spec import SopSpec

MOMENTS = "moments"


def _names(value: Any) -> Any:
    """A single value stands for a list of one; blank entries are refused."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, list):
        cleaned = [str(v).strip() for v in value]
        if any(not v for v in cleaned):
            raise ValueError("must not contain empty entries")
        return cleaned
    return value


Names = Annotated[list[str], BeforeValidator(_names)]


class StaffAudience(BaseModel):
    """Staff (导购 / 专属顾问) by store (code or name), region (the store's city) and role; all
    staff when empty. Only `channel: moments` SOPs address staff."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    store: Names = []
    region: Names = []
    role: Names = []


def check_moments_rules(spec: SopSpec, parsed: ParsedSop) -> None:
    """`channel: moments` posts to staff members' moments on a schedule: community kind, a staff
    audience and nothing addressed to customers or groups; staff audiences only on moments."""
    audience = spec.audience
    staff = getattr(audience, "staff", None) if audience else None
    if spec.channel != MOMENTS:
        if staff is not None:
            parsed.add(
                spec.line_of("audience", "staff"),
                f"`audience.staff` is for `channel: moments` (朋友圈); channel `{spec.channel}` "
                "sends to customers or groups: remove it",
            )
        return
    if spec.kind != "community":
        parsed.add(
            spec.line_of("kind"),
            "moments (朋友圈) follow a weekly plan: use `kind: community` with a `schedule`",
        )
    if staff is None:
        parsed.add(
            spec.line_of("audience"),
            "channel `moments` needs `audience.staff` naming whose moments post it "
            "(e.g. staff: {region: [北京], role: [advisor]}; `staff: {}` for everyone)",
        )
    for other in ("groups", "customers"):
        if audience is not None and getattr(audience, other) is not None:
            parsed.add(
                spec.line_of("audience", other),
                f"channel `moments` posts to staff members' moments; remove `audience.{other}`",
            )
    if spec.approval is not None:
        parsed.add(
            spec.line_of("approval"),
            "moments are posted by each staff member, who sees the task first; remove `approval`",
        )
    for index, step in enumerate(spec.step_list):
        keys = ("steps", index) if spec.steps else ("kind",)
        _check_moment_attachments(spec, index, parsed)
        if step.needs is not None:
            parsed.add(
                spec.line_of(*keys, "needs"),
                f"`needs` waits for a group's deals; moments step `{step.name}` has none: remove it",
            )


def _check_moment_attachments(spec: SopSpec, index: int, parsed: ParsedSop) -> None:
    """A moment carries up to 9 images, or one video, or one link (WeCom 41064 / 41065)."""
    kinds = [entry.kind for entry in getattr(spec.step_list[index], "attachments", None) or ()]
    if not kinds or set(kinds) == {"image"} or kinds in (["video"], ["link"]):
        return
    parsed.add(
        spec.line_of("steps", index, "attachments"),
        f"a moment takes up to 9 images, or one video, or one link, not {', '.join(kinds)}: "
        "keep one kind (mini-program cards and files cannot be posted to moments)",
    )
