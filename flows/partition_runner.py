"""A runner of a shared occurrence: claims its partitions one after another and works each through the pipeline's stages."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import pickle
import sys
import time

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from engine.partitions import (
    Leases,
    claim,
    dispatched_result,
    finish,
    prepared_result,
    runner_name,
    settled,
    work_plan,
)
from flows.pipeline import WORKERS, OccurrencePlan, Submitted, release, submit_batch
from models.deliveries import Occurrence
from models.partitions import DISPATCH, PREPARE, Claimed
from tasks.dispatch import dispatch_senders
from tasks.partitions import reconcile_partition

RUNNER_FLOW = "partition-runner"
RUNNER_DEPLOYMENT = "sopflow-partition-runner"
POLL_SECONDS = 0.5  # how often a runner waiting at the barrier looks for a lapsed lease


@dataclasses.dataclass(frozen=True)
class SharedOccurrence:
    """What every runner of an occurrence works from, pickled into its work row by the
    coordinating run: the plan, the occurrence's key (rows are marked with that run) and `now`."""

    plan: OccurrencePlan
    key: Occurrence
    now: dt.datetime


def run_partitions(work_id: int, kind: str, *, until_done: bool = False) -> int:
    """Claim and work the occurrence's partitions of `kind` until none is left to claim; with
    `until_done`, also wait for those others hold and take over any whose lease lapses (the
    barrier). Returns how many partitions this runner finished."""
    shared: SharedOccurrence = pickle.loads(work_plan(work_id))  # noqa: S301 - our own row
    owner = runner_name()
    with Leases(owner) as leases:
        work = _prepare if kind == PREPARE else _dispatch
        return work(shared, work_id, owner, leases, until_done)


def _wait(work_id: int, kind: str, until_done: bool) -> bool:
    """Whether a runner that found nothing to claim keeps waiting (for lapsed leases)."""
    if not until_done or settled(work_id, kind):
        return False
    time.sleep(POLL_SECONDS)
    return True


def _prepare(
    shared: SharedOccurrence, work_id: int, owner: str, leases: Leases, until_done: bool
) -> int:
    """Id ranges resolved, rendered and recorded; the next is claimed and submitted before one is
    collected, as `pipeline.prepared_batches` does."""
    finished = 0
    waiting: tuple[Claimed, Submitted] | None = None
    while True:
        claimed = claim(work_id, PREPARE, owner)
        submitted = None
        if claimed is not None:
            leases.add(claimed.id)
            id_range = (int(claimed.payload[0]), int(claimed.payload[1]))
            submitted = (claimed, submit_batch(shared.plan, shared.key, id_range, shared.now))
        if waiting is not None:
            finished += _collect(*waiting, owner=owner, leases=leases)
        waiting = submitted
        if waiting is None and not _wait(work_id, PREPARE, until_done):
            return finished


def _collect(claimed: Claimed, submitted: Submitted, *, owner: str, leases: Leases) -> int:
    try:
        resolved, rendered, planned = (future.result() for future in submitted)
    except Exception as error:
        finish(claimed.id, owner, {"error": f"{type(error).__name__}: {error}"[:500]}, failed=True)
        leases.discard(claimed.id)
        raise
    result = prepared_result(planned, rendered.sample, rendered.sample_for)  # type: ignore[union-attr]
    done = finish(claimed.id, owner, result)
    leases.discard(claimed.id)
    release(resolved, rendered, planned)  # type: ignore[arg-type]
    return int(done)


def _dispatch(
    shared: SharedOccurrence, work_id: int, owner: str, leases: Leases, until_done: bool
) -> int:
    """Buckets of senders sent; one taken over from a lapsed runner is reconciled first, so a
    row that may have reached WeCom is never sent again."""
    finished = 0
    while True:
        claimed = claim(work_id, DISPATCH, owner)
        if claimed is None:
            if _wait(work_id, DISPATCH, until_done):
                continue
            return finished
        leases.add(claimed.id)
        senders = [str(sender) for sender in claimed.payload]
        reconciled = None
        try:
            if claimed.taken_over:
                get_run_logger().info("taking over partition %s (lease lapsed)", claimed.seq)
                reconciled = reconcile_partition(shared.key, senders)
            result = dispatch_senders(shared.key, shared.plan.chat_type, senders, shared.now)
        except Exception as error:  # noqa: BLE001 - recorded with the partition; the run reports it
            failure = {"error": f"{type(error).__name__}: {error}"[:500]}
            finish(
                claimed.id, owner, {**dispatched_result(None, reconciled), **failure}, failed=True
            )
        else:
            finished += finish(claimed.id, owner, dispatched_result(result, reconciled))
        leases.discard(claimed.id)


@flow(name=RUNNER_FLOW, task_runner=ThreadPoolTaskRunner(max_workers=WORKERS))  # type: ignore[arg-type]
def partition_runner(work_id: int, kind: str = PREPARE, until_done: bool = False) -> int:
    """Work partitions of an occurrence another run coordinates (`SOPFLOW_OCCURRENCE_WORKERS`):
    `prepare` (id ranges) or `dispatch` (buckets of senders). Started by that run on the work pool."""
    if kind not in (PREPARE, DISPATCH):
        raise ValueError(f"kind must be {PREPARE!r} or {DISPATCH!r}, not {kind!r}")
    return run_partitions(work_id, kind, until_done=until_done)


def main(argv: list[str] | None = None) -> int:
    """`python -m flows.partition_runner WORK_ID KIND [--until-done]`: a runner in this process."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("work_id", type=int)
    parser.add_argument("kind", choices=(PREPARE, DISPATCH))
    parser.add_argument("--until-done", action="store_true")
    args = parser.parse_args(argv)
    partition_runner(args.work_id, args.kind, args.until_done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
