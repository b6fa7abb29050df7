"""A worker process of the race tests: a runner of one occurrence's prepare, then dispatch partitions."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from engine.partitions import settled
from flows.partition_runner import partition_runner
from models.db import session_scope
from models.partitions import DISPATCH, OccurrenceWork


def main(phases: str) -> int:
    """Started before the occurrence exists (importing Prefect takes seconds): reads the work's
    id from stdin, then runs each of `phases` (`prepare,dispatch`) until its partitions are all
    done; dispatch waits for the test to open it, as the occurrence's run would."""
    Path(os.environ["SOPFLOW_RUNNER_READY"]).touch()  # imports done: the test may start the race
    work_id = int(sys.stdin.readline())
    for kind in phases.split(","):
        while kind == DISPATCH and not _phase_is(work_id, DISPATCH):
            time.sleep(0.1)
        partition_runner(work_id, kind, until_done=True)
        assert settled(work_id, kind)
    return 0


def _phase_is(work_id: int, phase: str) -> bool:
    with session_scope(readonly=True) as session:
        work = session.get(OccurrenceWork, work_id)
        return work is not None and work.phase == phase


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
