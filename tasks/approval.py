"""Prefect tasks of the approval gate: count, publish the summary, tell the ops group, record a rejection."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.utilities.urls import url_for

from core.clock import utcnow
from core.settings import get_settings
from engine.approval import (
    ApprovalCheck,
    approval_view,
    check_approval,
    skip_unapproved,
    summary_markdown,
)
from engine.outcomes import RunTally, artifact_key
from models.db import session_scope
from models.deliveries import Occurrence
from orchestration.approval_notices import notice_markdown, post_notice
from soplang.spec import SopSpec
from tasks.dispatch import is_transient


@task(name="check-approval", cache_policy=NO_CACHE)
def check_approval_task(spec: SopSpec, occurrence: Occurrence, now: dt.datetime) -> ApprovalCheck:
    """Count the step's touches due to send at `now` against the SOP's `approval.over`."""
    with session_scope(readonly=True) as session:
        return check_approval(spec, occurrence, now=now, session=session)


def _kind(chat_type: str) -> str:
    return "group" if chat_type == "group" else "customer"


@task(name="publish-approval-summary", cache_policy=NO_CACHE)
def publish_approval_summary(
    spec: SopSpec, occurrence: Occurrence, chat_type: str, check: ApprovalCheck, tally: RunTally
) -> str:
    """Publish what the operator approves (sample, audience, tasks per staff member) as an artifact."""
    with session_scope(readonly=True) as session:
        view = approval_view(occurrence, chat_type, session=session)
    markdown = summary_markdown(
        spec,
        occurrence,
        check,
        view,
        tally,
        kind=_kind(chat_type),
        timeout_hours=get_settings().approval_timeout_hours,
    )
    create_markdown_artifact(
        key=artifact_key(occurrence.sop_id, occurrence.step, "approval"),
        markdown=markdown,
        description=f"{spec.title} · {occurrence.step} · {occurrence.occurrence}: awaiting approval",
    )
    return markdown


@task(
    name="notify-approval",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=is_transient,
)
def notify_approval(
    spec: SopSpec, occurrence: Occurrence, chat_type: str, check: ApprovalCheck, tally: RunTally
) -> bool:
    """Tell the ops group through its robot (`SOPFLOW_APPROVAL_ROBOT`) that this run waits for
    approval: SOP, step, audience, deadline and a link; False when no robot is configured."""
    settings = get_settings()
    deadline = utcnow() + dt.timedelta(hours=settings.approval_timeout_hours)
    audience = f"{tally.recipients} 个群" if chat_type == "group" else f"{tally.recipients} 位客户"
    markdown = notice_markdown(
        title=spec.title,
        sop_id=spec.id,
        step=occurrence.step,
        occurrence=occurrence.occurrence,
        audience=audience,
        to_send=check.to_send,
        run_name=flow_run.name or f"{spec.id} {occurrence.occurrence}",
        link=url_for("flow-run", obj_id=flow_run.id, url_type="ui") if flow_run.id else None,
        deadline=deadline,
        tz=settings.timezone,
    )
    return post_notice(settings, markdown)


@task(name="record-rejection", cache_policy=NO_CACHE)
def record_rejection(occurrence: Occurrence, reason: str) -> int:
    """Record every touch of the step still to send as skipped with `reason`."""
    with session_scope() as session:
        return skip_unapproved(occurrence, reason, session=session)
