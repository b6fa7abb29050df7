"""Welcome messages done the WeCom way: a new contact's touch sent with its event's WelcomeCode."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from channels.base import Channel
from core.clock import utcnow
from core.errors import ChannelError, ChannelTransient
from engine.compose import Composed
from engine.dispatch import DispatchResult, Outcomes, dispatch, is_unanswered
from models.db import session_scope
from models.deliveries import claim_for_sending, sendable_ids
from models.delivery import DeliveryStatus

# The code is spent (expired after 20 s, used, or another app answered first): the touch is
# over, never re-sent as a mass message, which would greet the customer a second time.
SPENT = {
    41050: "welcome code expired or invalid",
    41051: "another app already sent the welcome message",
    41096: "the welcome message is already being sent",
}
UNANSWERED_WELCOME = "no answer to send_welcome_msg; WeCom cannot be asked, so never resent"


def welcome_sender(channel: Channel) -> Callable[..., Any] | None:
    """The channel's send_welcome_msg(code, text, attachments), when it has one (the WeCom
    client does)."""
    found = getattr(channel, "send_welcome_msg", None)
    return found if callable(found) else None


def dispatch_events(
    channel: Channel,
    batch: Sequence[Composed],
    welcome_codes: Mapping[int, str],
    *,
    flow_run_id: str | None = None,
) -> DispatchResult:
    """Touches whose event carries a welcome code go by send_welcome_msg, one call each; the
    rest as mass messages (`dispatch`). A transient failure is re-raised after the batch."""
    send = welcome_sender(channel)
    welcomes = [c for c in batch if send and c.delivery_id in welcome_codes]
    others = [c for c in batch if not (send and c.delivery_id in welcome_codes)]
    result = (
        dispatch(channel, "single", others, flow_run_id=flow_run_id) if others else DispatchResult()
    )
    if not welcomes or send is None:
        return result
    with session_scope(readonly=True) as session:
        still = sendable_ids([c.delivery_id for c in welcomes], session=session)
    outcomes = Outcomes(result, flow_run_id)
    transient: ChannelTransient | None = None
    try:
        for touch in (c for c in welcomes if c.delivery_id in still):
            error = _send_one(send, touch, welcome_codes[touch.delivery_id], outcomes)
            if isinstance(error, ChannelTransient):
                transient = error
    finally:
        outcomes.settle()
    if transient is not None:
        raise transient
    return result


def _send_one(
    send: Callable[..., Any], touch: Composed, code: str, outcomes: Outcomes
) -> ChannelError | None:
    with session_scope() as session:
        outcomes.write(session)
        claimed = claim_for_sending(
            [touch.delivery_id], session=session, flow_run_id=outcomes.flow_run_id
        )
    outcomes.clear()
    if not claimed:
        return None
    ids = [touch.delivery_id]
    outcomes.result.calls += 1
    try:
        send(code, touch.content, *([touch.attachments] if touch.attachments else []))
    except ChannelError as error:
        if error.errcode in SPENT:
            reason = f"{SPENT[error.errcode]} ({error.errcode}); not re-sent as a mass message"
            outcomes.add(ids, DeliveryStatus.SKIPPED, reason, errcode=error.errcode)
        elif is_unanswered(error):
            outcomes.add(ids, DeliveryStatus.UNKNOWN, UNANSWERED_WELCOME)
        else:
            outcomes.add(ids, DeliveryStatus.FAILED, str(error)[:255], errcode=error.errcode)
        return error
    outcomes.add(ids, DeliveryStatus.SENT, sent_at=utcnow(), errcode=0)
    return None
