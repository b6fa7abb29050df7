"""Kill a worker mid-run and time how long the server takes to mark its flow run Crashed.

Run it against the server `make up` started (or any server at PREFECT_API_URL):

    make up                                                     # in one terminal
    PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/python bench/crash_detection.py

It ensures the Prefect objects (`orchestration/prefect_objects.py`: call limit, zombie automation),
deploys a flow that only sleeps to its own work pool `sopflow-crash-check` (so `make up`'s
worker never takes it), starts a worker with heartbeats every 30 s, runs the flow, and once it
is Running SIGKILLs the worker and the flow process (a machine dying: no process is left to
report a state). It then polls the run until it is Crashed and prints the seconds from the kill;
expect 60–100 s (the automation waits 90 s after the last heartbeat). The deployment and the
pool are deleted afterwards; the Crashed run stays in the UI.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prefect import flow
from prefect.settings import get_current_settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
POOL = "sopflow-crash-check"
DEPLOYMENT = "crash-check"


@flow(name=DEPLOYMENT)
def sleeper(seconds: int = 900) -> None:
    """Sleep in a flow run, so there is something running to kill."""
    time.sleep(seconds)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def deploy() -> None:
    """The sleeping flow as a deployment on its own process pool."""
    subprocess.run(
        [str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process", "--overwrite"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    sleeper.from_source(str(ROOT), "bench/crash_detection.py:sleeper").deploy(
        name=DEPLOYMENT, work_pool_name=POOL, print_next_steps=False, ignore_warnings=True
    )


def start_worker(log: Path) -> subprocess.Popen[bytes]:
    from orchestration.prefect_objects import HEARTBEAT_SECONDS

    env = dict(
        os.environ,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY=str(HEARTBEAT_SECONDS),
        PREFECT_WORKER_QUERY_SECONDS="2",
    )
    with log.open("wb") as output:
        return subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", POOL],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def state_of(run_id: object) -> tuple[str, str]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state  # type: ignore[arg-type]
    return (state.name, state.message or "") if state else ("unknown", "")


def wait_for(run_id: object, names: set[str], seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        name, _ = state_of(run_id)
        if name in names:
            return name
        time.sleep(1)
    raise SystemExit(f"run {run_id} not {'/'.join(sorted(names))} within {seconds:.0f} s")


def measure(after: float, timeout: float) -> int:
    from prefect.deployments import run_deployment

    from orchestration.prefect_objects import ensure_prefect_objects

    print("Prefect objects:", ensure_prefect_objects())
    deploy()
    log = Path(tempfile.mkdtemp(prefix="crash-check-")) / "worker.log"
    worker = start_worker(log)
    try:
        run = run_deployment(f"{DEPLOYMENT}/{DEPLOYMENT}", timeout=0)
        print(f"flow run {run.id}; worker log {log}")
        wait_for(run.id, {"Running"}, 120)
        time.sleep(after)  # the first heartbeat goes out as the flow starts
        victims = [worker.pid, *descendants(worker.pid)]
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        print(f"killed the worker and its flow process (pids {victims}) {after:.0f} s into the run")
        wait_for(run.id, {"Crashed"}, timeout)
        seconds = time.monotonic() - killed
        print(f"Crashed {seconds:.0f} s after the kill: {state_of(run.id)[1]}")
        return 0
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait()
        cleanup()


def cleanup() -> None:
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(f"{DEPLOYMENT}/{DEPLOYMENT}")
            client.delete_deployment(deployment.id)
            client.delete_work_pool(POOL)
        except ObjectNotFound:
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--after", type=float, default=5, help="seconds Running before the kill")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for Crashed")
    args = parser.parse_args()
    if not get_current_settings().api.url:
        raise SystemExit("set PREFECT_API_URL to the server, e.g. http://127.0.0.1:4200/api")
    return measure(args.after, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
