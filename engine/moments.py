"""Moments (朋友圈) occurrences: one add_moment_task for the chosen staff, polled until WeCom made
the moment, with each staff member's touch recorded once (target_kind `staff`).

Never two tasks for one touch: rows are `sending` before the call and carry the jobid after it; a
row left `sending` with a jobid is settled by polling that job, one left without (the answer was
lost) by finding the moment in get_moment_list, else it becomes `unknown` and is never resent.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session, col

from channels.attachments import Attachment, dumps
from channels.media import media_files
from channels.wecom import WeComClient
from channels.wecom_moments import (
    JOB_DONE,
    JOB_FAILED,
    JOB_RUNNING,
    MAX_MOMENT_SENDERS,
    MomentJobResult,
    add_moment_task,
    get_moment_task_result,
    iter_moment_list,
    iter_moment_task,
    moment_attachments,
)
from core.clock import as_utc, utcnow
from core.errors import ChannelError, ChannelUnreached
from engine.dispatch import UNANSWERED, is_unanswered
from models.db import session_scope
from models.deliveries import (
    Occurrence,
    PlannedTarget,
    claim_for_sending,
    record_planned,
    set_status,
    store_message,
    to_send,
)
from models.delivery import Delivery, DeliveryStatus, Message
from models.people import Staff, Store
from soplang.attachment_render import compile_attachments
from soplang.context import step_basics
from soplang.spec import SopSpec
from soplang.staff_audience import MOMENTS, StaffAudience
from soplang.template import compile_step, render

STAFF = "staff"  # Delivery.target_kind of a moments touch; target_id is the staff userid
POLL_WAITS = (
    0.5,
    1,
    2,
    4,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
)  # ≈ 2 min before leaving it `sending`
INVALID_SENDER = "WeCom refused this staff member as a sender (invalid_sender_list)"
NOT_FOUND = (
    "caught mid-send and WeCom lists no moment with this text since: never resent; check the "
    "WeCom admin console (sop/README.md, 朋友圈)"
)


@dataclass
class MomentsRun:
    """What one run of a moments occurrence did, for the run's summary."""

    staff: int = 0
    tasks: int = 0
    outcomes: Counter[str] | None = None
    unsettled: dict[str, int] | None = None

    def summary(self, occurrence: Occurrence) -> dict[str, object]:
        return {
            "sop_id": occurrence.sop_id,
            "step": occurrence.step,
            "occurrence": occurrence.occurrence,
            "channel": MOMENTS,
            "staff": self.staff,
            "moment_tasks": self.tasks,
            "this_run": dict(+(self.outcomes or Counter())),
            "unsettled": dict(self.unsettled or {}),
        }


def chosen_staff(audience: StaffAudience, *, session: Session) -> list[str]:
    """The userids of the staff the audience names (store code or name, store city, role)."""
    statement = select(Staff.userid).outerjoin(Store, col(Store.id) == col(Staff.store_id))
    if audience.store:
        statement = statement.where(
            col(Store.code).in_(audience.store) | col(Store.name).in_(audience.store)
        )
    if audience.region:
        statement = statement.where(col(Store.city).in_(audience.region))
    if audience.role:
        statement = statement.where(col(Staff.role).in_(audience.role))
    return sorted(str(u) for u in session.execute(statement).scalars())


def send_moments(
    spec: SopSpec,
    step: str,
    day: dt.date,
    client: WeComClient,
    *,
    flow_run_id: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_senders: int = MAX_MOMENT_SENDERS,
) -> dict[str, object]:
    """Reconcile, record one row per chosen staff member, create the moment task(s) of at most
    `max_senders` staff each, poll them."""
    occurrence = Occurrence(spec.id, step, day.isoformat(), MOMENTS, flow_run_id)
    run = MomentsRun(outcomes=Counter())
    reconcile(occurrence, client, run, sleep)
    context = step_basics(day, spec.id, spec.title)
    content = render(compile_step(spec, step), context)
    attachments = compile_attachments(spec, step).render(context)
    with session_scope() as session:
        staff = chosen_staff(spec.audience.staff or StaffAudience(), session=session)
        message_id = store_message(content, session=session, attachments=dumps(attachments))
        targets = [PlannedTarget(STAFF, u, u, message_id=message_id) for u in staff]
        record_planned(occurrence, targets, session=session)
    run.staff = len(staff)
    with session_scope() as session:
        waiting = session.execute(
            select(Delivery.id, Delivery.target_id)
            .where(*to_send(occurrence))
            .order_by(Delivery.target_id)
        ).all()
    for start in range(0, len(waiting), max_senders):
        chunk = {int(i): str(u) for i, u in waiting[start : start + max_senders]}
        _create_task(occurrence, client, (content, attachments), chunk, run, sleep)
    with session_scope(readonly=True) as session:
        run.unsettled = unsettled(occurrence, session=session)
    return run.summary(occurrence)


def _create_task(
    occurrence: Occurrence,
    client: WeComClient,
    content: tuple[str, tuple[Attachment, ...]],
    chunk: dict[int, str],
    run: MomentsRun,
    sleep: Callable[[float], None],
) -> None:
    """`sending` first, then the call, then the jobid on the rows, then poll the job."""
    with session_scope() as session:
        claimed = claim_for_sending(chunk, session=session, flow_run_id=occurrence.flow_run_id)
    senders = [chunk[i] for i in sorted(claimed, key=chunk.__getitem__)]
    if not senders:
        return
    ids = list(claimed)
    text, attachments = content
    try:
        shaped = moment_attachments(attachments, media_files(client).media_id)
        jobid = add_moment_task(client, text, senders, shaped)
    except ChannelError as error:
        _count(run, _failed(ids, error))
        return
    run.tasks += 1
    with session_scope() as session:
        set_status(ids, DeliveryStatus.SENDING, session=session, msgid=jobid, reason=None)
    _count(run, settle_job(jobid, client, sleep))


def _failed(ids: list[int], error: ChannelError) -> Counter[str]:
    """A refused call (or one that never left) fails its rows; an unanswered one stays `sending`."""
    status = DeliveryStatus.SENDING if is_unanswered(error) else DeliveryStatus.FAILED
    reason = UNANSWERED if status is DeliveryStatus.SENDING else str(error)[:255]
    errcode = None if isinstance(error, ChannelUnreached) else error.errcode
    with session_scope() as session:
        set_status(ids, status, session=session, reason=reason, errcode=errcode)
    return Counter({status.value: len(ids)})


def settle_job(
    jobid: str,
    client: WeComClient,
    sleep: Callable[[float], None] = time.sleep,
    waits: Sequence[float] = POLL_WAITS,
) -> Counter[str]:
    """Poll a job until WeCom made its moment: rows `sent` with the moment_id, refused senders
    `skipped`; a failed job fails its rows; one still running stays `sending` for the next run."""
    try:
        result = get_moment_task_result(client, jobid)
        for wait in waits:
            if result.status in (JOB_DONE, JOB_FAILED):
                break
            sleep(wait)
            result = get_moment_task_result(client, jobid)
    except ChannelError:  # the job is WeCom's; its rows stay `sending` for the next poll
        result = MomentJobResult(status=JOB_RUNNING)
    moved: Counter[str] = Counter()
    with session_scope() as session:
        rows = dict(
            session.execute(
                select(Delivery.id, Delivery.target_id).where(
                    col(Delivery.msgid) == jobid,
                    col(Delivery.status) == DeliveryStatus.SENDING.value,
                )
            ).all()
        )
        if result.status == JOB_FAILED:
            reason = f"the moment task failed: {result.errmsg}"[:255]
            moved["failed"] += set_status(
                rows, DeliveryStatus.FAILED, session=session, reason=reason, errcode=result.errcode
            )
        elif result.status == JOB_DONE:
            refused = set(result.invalid_senders)
            skipped = [i for i, u in rows.items() if u in refused]
            sent = [i for i, u in rows.items() if u not in refused]
            moved["skipped"] += set_status(
                skipped, DeliveryStatus.SKIPPED, session=session, reason=INVALID_SENDER
            )
            moved["sent"] += set_status(
                sent, DeliveryStatus.SENT, session=session, msgid=result.moment_id,
                sent_at=utcnow(), errcode=0,
            )  # fmt: skip
        else:
            moved["sending"] += len(rows)
    return moved


def running_jobs() -> list[str]:
    """The jobids of moment tasks whose rows still wait for WeCom to finish the job."""
    statement = select(func.distinct(Delivery.msgid)).where(
        col(Delivery.channel) == MOMENTS,
        col(Delivery.status) == DeliveryStatus.SENDING.value,
        col(Delivery.msgid).is_not(None),
    )
    with session_scope(readonly=True) as session:
        return sorted(str(jobid) for jobid in session.execute(statement).scalars())


def reconcile(
    occurrence: Occurrence,
    client: WeComClient,
    run: MomentsRun,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Settle the occurrence's rows an earlier run left `sending`."""
    with session_scope() as session:
        rows = session.execute(
            select(
                Delivery.id,
                Delivery.target_id,
                Delivery.msgid,
                Delivery.updated_at,
                Message.content,
            )
            .join(Message, col(Message.id) == col(Delivery.message_id))
            .where(
                col(Delivery.sop_id) == occurrence.sop_id,
                col(Delivery.step) == occurrence.step,
                col(Delivery.occurrence) == occurrence.occurrence,
                col(Delivery.status) == DeliveryStatus.SENDING.value,
            )
        ).all()
    for jobid in sorted({msgid for _, _, msgid, _, _ in rows if msgid}):
        _count(run, settle_job(jobid, client, sleep))
    lost = [(i, u, as_utc(t), c) for i, u, msgid, t, c in rows if not msgid]
    if lost:
        try:
            _count(run, _find_lost(lost, client))
        except ChannelError:  # looked for again next run; never resent meanwhile
            _count(run, Counter({"sending": len(lost)}))


def _find_lost(
    lost: Sequence[tuple[int, str, dt.datetime, str]], client: WeComClient
) -> Counter[str]:
    """Rows whose add_moment_task got no answer: the moment with their text created since they
    were claimed settles them; without one they are `unknown` (never resent)."""
    since = min(t for _, _, t, _ in lost) - dt.timedelta(minutes=5)
    texts = {c for _, _, _, c in lost}
    found: dict[str, str] = {}  # userid -> moment_id
    for moment in iter_moment_list(client, since, utcnow() + dt.timedelta(minutes=1)):
        text = moment.get("text")
        content = text.get("content") if isinstance(text, dict) else None
        moment_id = str(moment.get("moment_id") or "")
        if content in texts and moment.get("create_type") == 0 and moment_id:
            for task in iter_moment_task(client, moment_id):
                found.setdefault(str(task.get("userid")), moment_id)
    moved: Counter[str] = Counter()
    with session_scope() as session:
        for delivery_id, userid, _, _ in lost:
            if userid in found:
                moved["sent"] += set_status(
                    [delivery_id], DeliveryStatus.SENT, session=session, msgid=found[userid],
                    sent_at=utcnow(), errcode=0, reason=None,
                )  # fmt: skip
            else:
                moved["unknown"] += set_status(
                    [delivery_id], DeliveryStatus.UNKNOWN, session=session, reason=NOT_FOUND
                )
    return moved


def _count(run: MomentsRun, moved: Counter[str]) -> None:
    assert run.outcomes is not None
    run.outcomes.update(moved)


def unsettled(occurrence: Occurrence, *, session: Session) -> dict[str, int]:
    """The occurrence's rows a run leaves unfinished: `sending`, still to send, `unknown`."""
    statement = (
        select(Delivery.status, func.count())
        .where(
            col(Delivery.sop_id) == occurrence.sop_id,
            col(Delivery.step) == occurrence.step,
            col(Delivery.occurrence) == occurrence.occurrence,
            col(Delivery.status).in_(("sending", "planned", "failed", "unknown")),
        )
        .group_by(Delivery.status)
    )
    counts = dict(session.execute(statement).tuples().all())
    waiting = counts.get("planned", 0) + counts.get("failed", 0)
    found = {"sending": counts.get("sending", 0), "waiting": waiting}
    found["unknown"] = counts.get("unknown", 0)
    return {key: value for key, value in found.items() if value}


def moment_tasks(sop_id: str, occurrence: str, *, session: Session) -> int:
    """How many moments an occurrence's rows point at (one per add_moment_task that succeeded)."""
    statement = select(func.count(func.distinct(Delivery.msgid))).where(
        col(Delivery.sop_id) == sop_id,
        col(Delivery.occurrence) == occurrence,
        col(Delivery.channel) == MOMENTS,
        col(Delivery.msgid).is_not(None),
    )
    return int(session.execute(statement).scalar_one())
