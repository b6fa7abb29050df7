"""Prefect tasks of the approval gate: count, publish the summary, record a rejection."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

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
from soplang.spec import SopSpec


@task(name="check-approval", cache_policy=NO_CACHE)
def check_approval_task(spec: SopSpec, occurrence: Occurrence) -> ApprovalCheck:
    """Count the step's touches still to send against the SOP's `approval.over`."""
    with session_scope(readonly=True) as session:
        return check_approval(spec, occurrence, session=session)


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
        kind="group" if chat_type == "group" else "customer",
        timeout_hours=get_settings().approval_timeout_hours,
    )
    create_markdown_artifact(
        key=artifact_key(occurrence.sop_id, occurrence.step, "approval"),
        markdown=markdown,
        description=f"{spec.title} · {occurrence.step} · {occurrence.occurrence}: awaiting approval",
    )
    return markdown


@task(name="record-rejection", cache_policy=NO_CACHE)
def record_rejection(occurrence: Occurrence, reason: str) -> int:
    """Record every touch of the step still to send as skipped with `reason`."""
    with session_scope() as session:
        return skip_unapproved(occurrence, reason, session=session)
