"""Welcome codes answered at once: the receiver sends a new contact's welcome step itself."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlmodel import col

from channels import get_channel
from channels.base import Channel
from channels.media import use_media_store
from core.clock import local_today
from core.settings import get_settings
from engine.events import Claim, claimed_events, complete, release
from engine.guard import CUSTOMER_GUARDS, defer_in_quiet_hours
from engine.triggers import plan_events
from engine.welcome import dispatch_events
from models.db import session_scope
from models.delivery import Delivery
from models.media import MediaUploads
from soplang.folder import sop_files
from soplang.selection import trigger_sops
from soplang.spec import SopSpec

log = logging.getLogger(__name__)

CONTACT_ADDED = "contact.added"
# The code dies 20 s after the callback, so a welcome deferred to the end of quiet hours is a
# welcome lost: the customer who just added us is answered at once, night or day. Opt-outs,
# caps and the holdout still apply (sop/README.md, 欢迎语).
WELCOME_GUARDS = tuple(guard for guard in CUSTOMER_GUARDS if guard is not defer_in_quiet_hours)


@dataclass(frozen=True)
class Answer:
    """What the receiver did with one claimed welcome event."""

    event_id: int
    outcome: str  # the Delivery row's status (and reason), or why the drain has the event
    completed: bool  # True: the event is processed; False: handed back to the drain
    seconds: float


def answering_sop(specs: Sequence[SopSpec]) -> SopSpec | None:
    """The SOP whose first step answers the code: the first on the event whose first step does
    not wait (a waiting step can never use a 20 s code)."""
    return next((s for s in specs if s.step_list and not s.step_list[0].waits), None)


class TriggerSops:
    """The trigger SOPs of the settings' folder (or `sop_dir`), parsed again only when a file
    changed: a parse takes ~0.3 s, a look at the files' times a millisecond."""

    def __init__(self, sop_dir: str | Path | None = None) -> None:
        self.sop_dir = sop_dir
        self._seen: tuple[tuple[str, int, int], ...] | None = None
        self._specs: dict[str, list[SopSpec]] = {}

    def __call__(self, kind: str) -> list[SopSpec]:
        folder = self.sop_dir or get_settings().sop_dir
        stats = ((p, p.stat()) for p in sop_files(folder))
        seen = tuple((str(p), s.st_mtime_ns, s.st_size) for p, s in stats)
        if seen != self._seen:
            self._specs, self._seen = trigger_sops(folder), seen
        return self._specs.get(kind, [])


def _wecom_channel() -> Channel:
    """The settings' channel, its attachment files' media ids kept in the database."""
    channel = get_channel(get_settings())
    use_media_store(channel, MediaUploads())
    return channel


def _row_outcome(spec: SopSpec, step: str, event_id: int) -> str:
    """The event's Delivery row for the step, as `status` or `status: reason`."""
    prefix = f"{spec.id}:{step}:event-{event_id}:"
    with session_scope(readonly=True) as session:
        row = session.execute(
            select(col(Delivery.status), col(Delivery.reason)).where(
                col(Delivery.idempotency_key).startswith(prefix)
            )
        ).first()
    if row is None:
        return "no touch (not in the audience or no customer)"
    return f"{row[0]}: {row[1]}" if row[1] else str(row[0])


class WelcomeAnswerer:
    """Sends the first step of the answering SOP for claimed contact.added events, on one
    channel kept open for the receiver's life (its token and limiter are reused)."""

    def __init__(
        self,
        make_channel: Callable[[], Channel] | None = None,
        sops: Callable[[str], list[SopSpec]] | None = None,
    ) -> None:
        self._make_channel = make_channel or _wecom_channel
        self._channel: Channel | None = None
        self._sops = sops or TriggerSops()

    @contextmanager
    def _open(self) -> Iterator[Channel]:
        if self._channel is None:
            self._channel = self._make_channel()
        yield self._channel

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def answer(self, claim: Claim, *, now: dt.datetime) -> Answer:
        """Render, guard, record and send the welcome step for the claim's event, then complete
        the event, or hand it back to the drain when other SOPs or later steps remain for it or
        the send failed (the step's idempotency key stops the drain from sending it again)."""
        started = time.monotonic()
        event_id = claim.first_id or 0
        try:
            specs = self._sops(CONTACT_ADDED)
            spec = answering_sop(specs)
            if spec is None:
                return self._finish(claim, "no SOP answers it at once", False, now, started)
            step = spec.step_names[0]
            with session_scope(readonly=True) as session:
                events = claimed_events(claim.token, session=session)
            day = local_today(now, get_settings().timezone)
            batch = plan_events(
                spec, step, events, now=now, day=day, guards=WELCOME_GUARDS, answers_welcome=True
            )
            if batch.ready:
                with self._open() as channel:
                    dispatch_events(channel, batch.ready, batch.welcome_codes)
        except Exception as error:  # noqa: BLE001 - whatever failed, the drain takes the event
            log.warning("welcome for event %d handed to the drain: %s", event_id, error)
            self.close()  # a fresh channel next time, in case this one is what broke
            return self._finish(claim, f"handed to the drain: {error}", False, now, started)
        rest = len(specs) > 1 or len(spec.step_list) > 1
        return self._finish(claim, _row_outcome(spec, step, event_id), not rest, now, started)

    def _finish(
        self, claim: Claim, outcome: str, done: bool, now: dt.datetime, started: float
    ) -> Answer:
        """Complete the event, or release it so the next drain takes it at once."""
        with session_scope() as session:
            if done:
                complete(claim.token, now=now, session=session)
            else:
                release(claim.token, session=session)
        return Answer(claim.first_id or 0, outcome, done, time.monotonic() - started)
