"""Process recorded callbacks after the answer went out: apply each, then announce trigger events."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from callback.apply import CONTACT_ADDED, Directory, apply_event
from callback.parse import CallbackEvent
from core.clock import utcnow
from engine.events import Claim
from engine.welcome_now import Answer, WelcomeAnswerer
from models.callbacks import WecomCallback, mark_failed, mark_processed, pending_callbacks
from models.db import session_scope
from orchestration.events import announce_events

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 20  # then the row stays, unprocessed with its last error, for an operator
RETRY_BASE_SECONDS = 2.0  # a failed event waits 2, 4, 8 … (at most 300) s before its next try
POLL_SECONDS = 5.0


@dataclass
class Processed:
    """What one pass did: events applied, failed, and trigger events recorded by kind."""

    applied: int = 0
    failed: int = 0
    recorded: Counter[str] = field(default_factory=Counter)
    welcomes: list[Answer] = field(default_factory=list)


def process_pending(
    directory: Directory,
    *,
    now: Callable[[], dt.datetime] = utcnow,
    limit: int = 500,
    not_before: dict[int, float] | None = None,
    announce: Callable[..., object] = announce_events,
    welcome: WelcomeAnswerer | None = None,
) -> Processed:
    """Apply up to `limit` recorded events, each in its own transaction; a failure rolls its
    effects back and leaves the raw event for a later try.

    With `welcome`, a new contact's WelcomeCode is answered right after its event is committed
    (the code lives 20 s; the drain starts 10 s after an announcement and takes 11–15 s); only
    events that still have work for the drain are announced."""
    waits = not_before if not_before is not None else {}
    done = Processed()
    with session_scope(readonly=True) as session:
        rows = pending_callbacks(limit=limit, max_attempts=MAX_ATTEMPTS, session=session)
        ids = [
            row.id
            for row in rows
            if row.id is not None and waits.get(row.id, 0) <= time.monotonic()
        ]
    for callback_id in ids:
        try:
            with session_scope() as session:
                if not mark_processed(callback_id, now=now(), session=session):
                    continue
                row = session.get(WecomCallback, callback_id)
                assert row is not None
                applied = apply_event(
                    CallbackEvent.parse(row.xml),
                    directory,
                    now=now(),
                    session=session,
                    claim_welcomes=welcome is not None,
                )
        except Exception as error:  # noqa: BLE001 - any failure leaves the raw event for a retry
            with session_scope() as session:
                mark_failed(callback_id, f"{type(error).__name__}: {error}", session=session)
                attempts = session.get(WecomCallback, callback_id)
                tries = attempts.attempts if attempts else 1
            waits[callback_id] = time.monotonic() + min(300.0, RETRY_BASE_SECONDS**tries)
            log.warning("callback %d failed (try %d): %s", callback_id, tries, error)
            done.failed += 1
            continue
        waits.pop(callback_id, None)
        done.applied += 1
        done.recorded.update(applied.recorded)
        log.info("callback %d: %s", callback_id, applied.note or "applied")
        for claim in applied.welcomes:  # only claimed when `welcome` is given
            answer = _answer(welcome, claim, now()) if welcome is not None else None
            if answer is not None:
                done.welcomes.append(answer)
                done.recorded[CONTACT_ADDED] -= answer.completed  # nothing left for the drain
    for kind, count in done.recorded.items():
        if count <= 0:
            continue
        told = announce(kind, count, source="wecom-callback")
        log.info("%d %s event(s) recorded: %s", count, kind, getattr(told, "detail", told))
    return done


def _answer(welcome: WelcomeAnswerer, claim: Claim, now: dt.datetime) -> Answer | None:
    """Answer one welcome code; when even handing the event back fails, its claim lapses after
    the lease (15 min) and the drain takes it then."""
    try:
        answer = welcome.answer(claim, now=now)
    except Exception:  # noqa: BLE001 - the event is recorded; the drain is the fallback
        log.exception("answering the welcome code of event %s failed", claim.first_id)
        return None
    log.info(
        "welcome for event %d: %s in %.2f s%s",
        answer.event_id,
        answer.outcome,
        answer.seconds,
        "" if answer.completed else "; the drain takes the rest",
    )
    return answer


class CallbackWorker:
    """A thread that processes recorded callbacks when woken (each recording wakes it) and every
    POLL_SECONDS (retries, and events recorded while it was down)."""

    def __init__(
        self,
        directory: Callable[[], Directory],
        *,
        poll_seconds: float = POLL_SECONDS,
        announce: Callable[..., object] = announce_events,
        welcome: Callable[[], WelcomeAnswerer | None] = WelcomeAnswerer,
    ) -> None:
        self._directory = directory
        self._poll = poll_seconds
        self._announce = announce
        self._welcome = welcome
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._not_before: dict[int, float] = {}
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> CallbackWorker:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="callback-worker", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        directory, welcome = self._directory(), self._welcome()
        try:
            while not self._stop.is_set():
                self._wake.wait(self._poll)
                self._wake.clear()
                try:
                    while process_pending(
                        directory,
                        not_before=self._not_before,
                        announce=self._announce,
                        welcome=welcome,
                    ).applied:
                        pass  # more may have arrived while applying
                except Exception:  # noqa: BLE001 - the database may be down; try next poll
                    log.exception(
                        "processing recorded callbacks failed; retrying in %.0f s", self._poll
                    )
        finally:
            if welcome is not None:
                welcome.close()
