"""One occurrence, many workers: the occurrence's run partitions it, starts runners on the pool, works beside them and waits at each barrier."""

from __future__ import annotations

import datetime as dt
import pickle
from typing import Any

from prefect import get_run_logger

from core.settings import get_settings
from engine.outcomes import RunTally
from engine.partitions import dispatched, prepared_tally, set_phase
from engine.reconcile import ReconcileSummary
from flows.approval import approval_gate
from flows.partition_runner import (
    RUNNER_DEPLOYMENT,
    RUNNER_FLOW,
    SharedOccurrence,
    run_partitions,
)
from flows.pipeline import OccurrencePlan, batch_ranges
from models.deliveries import Occurrence
from models.partitions import DISPATCH, DONE, PREPARE
from tasks.outcomes import publish_outcomes
from tasks.partitions import partition_dispatch, partition_occurrence


class PartitionFailed(RuntimeError):
    """Partitions of the occurrence failed to prepare; a re-run of the occurrence retries them."""


def send_partitioned(
    plan: OccurrencePlan, key: Occurrence, reconciled: ReconcileSummary, now: dt.datetime
) -> tuple[dict[str, Any], list[str]]:
    """`pipeline.send_occurrence` with its batches and sender buckets shared by
    `SOPFLOW_OCCURRENCE_WORKERS` runners: this run and child runs of the `partition-runner`
    deployment. The outcomes are summed from the partitions' rows, not from this run's memory."""
    runners = get_settings().occurrence_workers
    shared = pickle.dumps(SharedOccurrence(plan, key, now))
    work_id, resumed = partition_occurrence(key, batch_ranges(plan, now), shared)
    logger = get_run_logger()
    logger.info(
        "occurrence work %s (%s), %d runners", work_id, "resumed" if resumed else "new", runners
    )
    start_runners(work_id, PREPARE, runners - 1)
    run_partitions(work_id, PREPARE, until_done=True)
    tally = RunTally(reconciled=reconciled.counts())
    failures = prepared_tally(work_id, tally)
    if failures:
        raise PartitionFailed(
            f"{len(failures)} partition(s) of {key.sop_id} {key.step} {key.occurrence} failed to "
            f"prepare (run the occurrence again to retry them): {failures[0]}"
        )
    errors: list[str] = []
    if approval_gate(plan.spec, key, plan.chat_type, tally, now).proceed:
        planned = partition_dispatch(work_id, key, now, runners)
        set_phase(work_id, DISPATCH)  # after its partitions exist: a runner waiting for it starts
        if planned:
            start_runners(work_id, DISPATCH, runners - 1)
            run_partitions(work_id, DISPATCH, until_done=True)
        total = dispatched(work_id)
        tally.add_dispatched(total.result)
        for status, rows in total.reconciled.items():
            tally.reconciled[status] = tally.reconciled.get(status, 0) + rows
        errors = total.errors
    set_phase(work_id, DONE)
    summary = publish_outcomes(key, plan.spec, tally, now)
    logger.info("%s %s %s: %s", key.sop_id, key.step, key.occurrence, summary["in_words"])
    return summary, errors


def start_runners(work_id: int, kind: str, count: int) -> int:
    """Start `count` runners as child runs of the `partition-runner` deployment (not waited for:
    this run works too, and the barrier waits for their partitions, not for them). Without the
    deployment this run works every partition alone. Returns how many were started."""
    if count < 1:
        return 0
    from prefect.deployments import run_deployment

    for started in range(count):
        try:
            run_deployment(
                f"{RUNNER_FLOW}/{RUNNER_DEPLOYMENT}",
                parameters={"work_id": work_id, "kind": kind},
                timeout=0,
            )
        except Exception as error:  # noqa: BLE001 - the occurrence goes on with fewer runners
            get_run_logger().warning(
                "could not start a %s runner (%s: %s); this run takes its share",
                kind,
                type(error).__name__,
                error,
            )
            return started
    return count
