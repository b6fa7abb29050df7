"""Acceptance: `sopflow event add` runs the drain through the deployment's event trigger, within seconds."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from prefect import get_client
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL
from prefect.workers.process import ProcessWorker

from channels.emulator.core import WeComEmulator
from core.clock import utcnow
from core.settings import PROJECT_ROOT, reset_settings
from orchestration.events import DEBOUNCE
from sopflow.deployments import WORK_POOL
from tests.factories import add_customers, deliveries, make_world
from tests.orchestration.drain_trigger import remove_deployment, runs_of, wait_for

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)

BIN = Path(sys.executable).parent
WORKER_GRACE_SECONDS = 10
LAG = dt.timedelta(seconds=10)  # the server's trigger and action services, on a busy machine


def prefect_env(tmp_path: Path) -> dict[str, str]:
    """This test's settings (database, emulator) plus the session's Prefect server, for the
    processes it starts: deploy, worker (and its flow runs), `sopflow event add`."""
    return {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }


@pytest.fixture
def pool() -> Iterator[str]:
    """The `sopflow` process work pool (created for the test unless it exists already)."""
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(WORK_POOL)
            created = False
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            client.create_work_pool(
                WorkPoolCreate(name=WORK_POOL, type="process", base_job_template=template)
            )
            created = True
    yield WORK_POOL
    if created:
        with get_client(sync_client=True) as client:
            client.delete_work_pool(WORK_POOL)


@pytest.fixture
def drain_deployment(pool: str, tmp_path: Path) -> Iterator[UUID]:
    """drain-events applied from the generated prefect.yaml by `prefect deploy`, as `make up` does."""
    deployed = subprocess.run(
        [BIN / "prefect", "--no-prompt", "deploy", "--name", "drain-events"],
        cwd=PROJECT_ROOT,
        env=prefect_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("drain-events/drain-events")
    assert deployment.work_pool_name == pool
    try:
        yield deployment.id
    finally:
        remove_deployment(deployment.id)


@pytest.fixture
def worker(customer: str, drain_deployment: UUID, tmp_path: Path) -> Iterator[Path]:
    """A `prefect worker start --pool sopflow` process polling every second, with the settings
    the `customer` fixture made (database, emulator, SOP folder); its log file."""
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [BIN / "prefect", "worker", "start", "--pool", WORK_POOL],
            cwd=PROJECT_ROOT,
            env=prefect_env(tmp_path),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log
    finally:
        # The worker ignores SIGTERM for a minute (PrefectHQ/prefect#22528): SIGINT, then SIGKILL.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(WORKER_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def customer(
    emulator: WeComEmulator, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A new contact in a small world; the trigger SOPs only, and no quiet hours whatever the hour."""
    folder = tmp_path / "sop"
    shutil.copytree(PROJECT_ROOT / "sop" / "triggers", folder / "triggers")
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder))
    monkeypatch.setenv("SOPFLOW_QUIET_START", "00:00")  # start == end: no quiet hours
    monkeypatch.setenv("SOPFLOW_QUIET_END", "00:00")
    reset_settings()
    make_world(dt.date.today(), database_url)
    add_customers(1, stage="new")
    return "wmTEST0000000"  # the factories' first customer


def test_sopflow_event_add_runs_the_drain_within_seconds_via_the_event_trigger(
    customer: str, worker: Path, drain_deployment: UUID, emulator: WeComEmulator, tmp_path: Path
) -> None:
    """The trigger creates the run at once, scheduled one debounce on; the worker runs it and
    the welcome is sent. (Measured on an idle 2-core machine: about 15 s from the command.)"""
    before = utcnow()
    added = subprocess.run(
        [BIN / "sopflow", "event", "add", "contact.added", "--customer", customer],
        cwd=PROJECT_ROOT,
        env=prefect_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    after, told = utcnow(), time.monotonic()
    assert added.returncode == 0, added.stderr
    assert "Prefect told: drain-events runs in about 10 s" in added.stdout, added.stderr

    def triggered() -> list:
        # The trigger's run is due one debounce after the event; runs of the 15-minute safety
        # schedule (when the server's scheduler runs) are due at other times.
        return [
            r
            for r in runs_of(drain_deployment)
            if before + DEBOUNCE <= r.expected_start_time <= after + DEBOUNCE + LAG
        ]

    (created,) = wait_for(triggered, 20, "a drain run")

    def finished() -> list:
        return [r for r in triggered() if r.state and r.state.is_final()]

    try:
        (run,) = wait_for(finished, 150, "a finished drain run")
    except AssertionError as error:
        pytest.fail(f"{error}; worker log:\n{worker.read_text()[-4000:]}")
    took = time.monotonic() - told
    log.info("sopflow event add → completed drain run: %.1f s", took)
    assert run.id == created.id
    assert run.state is not None and run.state.is_completed(), (run.state, took)
    (welcome,) = [r for r in deliveries() if r.sop_id == "welcome"]
    assert (welcome.status, welcome.target_id) == ("sent", customer)
    (message,) = emulator.messages
    assert message["targets"] == [customer] and "欢迎加入" in message["content"]
