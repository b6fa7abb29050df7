"""`make up`: schema, demo world, Prefect server, deployments, worker and today's first runs, until Ctrl-C."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from channels.emulator.coupons import DEFAULT_SECRET as COUPON_SECRET
from channels.emulator.coupons import ISSUE as COUPON_ISSUE
from core.settings import PROJECT_ROOT, get_settings
from orchestration.prefect_objects import HEARTBEAT_SECONDS

log = logging.getLogger("sopflow.up")
EMULATOR_PORT = 8931
CALLBACK_PORT = 8932
WORKER_GRACE_SECONDS = 15


@dataclass
class Stack:
    """The processes `up` started, stopped in reverse order."""

    env: dict[str, str]
    logs: Path
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log_file = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            list(args),
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches `up` only; it stops the children itself
        )
        self.processes.append((name, process))
        return process

    def stop(self) -> None:
        for name, process in reversed(self.processes):
            if process.poll() is not None:
                continue
            # The worker ignores SIGTERM for a minute (PrefectHQ/prefect#22528): SIGINT, then SIGKILL.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(WORKER_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop after SIGINT; killing it", name)
                process.kill()
                process.wait()


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def prefect_env(port: int) -> dict[str, str]:
    """The environment every process `up` starts shares."""
    api = f"http://127.0.0.1:{port}/api"
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(PROJECT_ROOT / ".prefect"),
        PREFECT_API_URL=api,
        PREFECT_UI_API_URL=api,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="2",
        PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL="WARNING",
        # Flow runs emit heartbeats; the zombie automation marks a run Crashed when they stop.
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY=str(HEARTBEAT_SECONDS),
    )
    return env


def wait_until(
    url: str, seconds: float, what: str, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} while starting")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).ok:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not answer at {url} within {seconds:.0f} s")


def port_answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def prepare_database(customers: int) -> None:
    from demo import load_demo_world
    from models.db import is_empty, upgrade

    upgrade()
    if is_empty():
        log.info("loading the demo world (%d customers) …", customers)
        load_demo_world(get_settings().database_url, customers=customers, progress=log.info)
    else:
        log.info("database already holds a world; reusing it")


def choose_channel(stack: Stack) -> str:
    """The real WeCom API when credentials are set, else the local emulator."""
    settings = get_settings()
    if settings.wecom_corp_id and settings.wecom_corp_secret.get_secret_value():
        stack.env["SOPFLOW_CHANNEL"] = "wecom"
        return f"WeCom API at {settings.wecom_api_base}"
    base = f"http://127.0.0.1:{EMULATOR_PORT}"
    if not port_answers(f"{base}/emulator/state"):
        # Its mass messages persist under the data dir (the command's default), so results
        # survive an emulator restart.
        emulator = stack.start(
            "emulator", _bin("sopflow"), "emulator", "--port", str(EMULATOR_PORT)
        )
        wait_until(f"{base}/emulator/state", 30, "the WeCom emulator", emulator)
    tell_emulator_names(base)
    stack.env.update(
        SOPFLOW_CHANNEL="wecom",
        WECOM_API_BASE=base,
        WECOM_CORP_ID="demo-corp",
        WECOM_CORP_SECRET="demo-secret",
    )
    if not get_settings().coupon_url:  # the emulator's coupon system stands in for the chain's
        stack.env.update(
            SOPFLOW_COUPON_URL=base + COUPON_ISSUE, SOPFLOW_COUPON_SECRET=COUPON_SECRET
        )
    return f"the local WeCom emulator at {base}"


def tell_emulator_names(base: str) -> None:
    """Staff and group names for the emulator's sent-messages page (it knows only ids)."""
    from sqlalchemy import select

    from models.db import session_scope
    from models.people import CustomerGroup, Staff

    with session_scope(readonly=True) as session:
        names = dict(session.execute(select(Staff.userid, Staff.name)).tuples().all())
        names.update(
            session.execute(select(CustomerGroup.chat_id, CustomerGroup.name)).tuples().all()
        )
    with contextlib.suppress(requests.RequestException):
        requests.post(f"{base}/emulator/names", json=names, timeout=10)


def start_callback(stack: Stack) -> None:
    """The WeCom callback receiver beside the emulator, with a Token/AES key pair (the settings',
    else a fresh one) for WeCom's admin console; the emulator posts its events to it."""
    from channels.wecom_crypto import new_credentials

    settings = get_settings()
    token = settings.wecom_callback_token.get_secret_value()
    aes_key = settings.wecom_callback_aes_key.get_secret_value()
    if not (token and aes_key):
        token, aes_key = new_credentials()
    stack.env.update(WECOM_CALLBACK_TOKEN=token, WECOM_CALLBACK_AES_KEY=aes_key)
    url = f"http://127.0.0.1:{CALLBACK_PORT}"
    receiver = stack.start("callback", _bin("sopflow"), "callback", "--port", str(CALLBACK_PORT))
    wait_until(f"{url}/health", 30, "the WeCom callback receiver", receiver)
    log.info("WeCom callback receiver: %s/wecom/callback (publish it over HTTPS)", url)
    log.info("  for WeCom's admin console: Token %s  EncodingAESKey %s", token, aes_key)
    base = stack.env.get("WECOM_API_BASE", "")
    if base.startswith(f"http://127.0.0.1:{EMULATOR_PORT}"):
        config = {"url": f"{url}/wecom/callback", "token": token, "aes_key": aes_key,
                  "corp_id": stack.env["WECOM_CORP_ID"]}  # fmt: skip
        with contextlib.suppress(requests.RequestException):
            requests.post(f"{base}/emulator/callback/config", json=config, timeout=10)
        log.info("  the emulator posts to it: POST %s/emulator/callback/add_contact", base)


def start_prefect(stack: Stack, port: int) -> None:
    api = stack.env["PREFECT_API_URL"]
    if port_answers(f"{api}/health"):
        raise RuntimeError(
            f"something already serves {api}; stop it (or the other `make up`) first, or use `sopflow up --port`"
        )
    server = stack.start(
        "server", _bin("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)
    )
    wait_until(f"{api}/health", 120, "the Prefect server", server)
    ensure_prefect_objects_logged()
    apply_deployments_logged()
    stack.start("worker", _bin("prefect"), "worker", "start", "--pool", "sopflow")


def ensure_prefect_objects_logged() -> None:
    """The call limit and the zombie automation on the server (orchestration/prefect_objects.py)."""
    from orchestration.prefect_objects import ensure_prefect_objects

    done = ensure_prefect_objects()
    log.info("Prefect objects: %s", ", ".join(f"{name} {how}" for name, how in done.items()))


def apply_deployments_logged() -> None:
    """prefect.yaml regenerated from sop/ and applied to the server (the work pool created when
    missing), through the same code as `sopflow deployments --apply`."""
    from core.errors import SopDefinitionError, SopError
    from sopflow.apply import DeploymentFileError, apply_sop_dir

    try:
        outcome = apply_sop_dir(get_settings().sop_dir, PROJECT_ROOT / "prefect.yaml")
    except SopDefinitionError as error:
        raise RuntimeError("the SOP files have problems:\n" + "\n".join(error.problems)) from None
    except (SopError, DeploymentFileError) as error:
        raise RuntimeError(f"could not apply the deployments: {error}") from None
    for line in outcome.applied.lines():
        log.info("deployments %s", line)


def trigger_today() -> list[tuple[str, str]]:
    """One run of each community SOP for today, so the UI shows results at once."""
    from prefect.deployments import run_deployment

    from soplang.loader import load_sops

    names = sorted(s.id for s in load_sops([get_settings().sop_dir]) if s.kind == "community")
    return [(name, str(run_deployment(f"community-sop/{name}", timeout=0).id)) for name in names]


def schedule_campaigns() -> None:
    """Scheduled runs for each upcoming campaign's steps, so the UI shows them before they happen."""
    from core.clock import local
    from orchestration.campaigns import schedule_upcoming

    for code, runs in schedule_upcoming().items():
        steps = ", ".join(
            f"{r.step} {local(r.scheduled_at, get_settings().timezone):%m-%d %H:%M}" for r in runs
        )
        log.info("campaign %s scheduled: %s", code, steps)


def wait_for_runs(runs: list[tuple[str, str]], seconds: float = 150) -> None:
    """Report each triggered run's final state and what it recorded."""
    from prefect import get_client

    deadline = time.monotonic() + seconds
    with get_client(sync_client=True) as client:
        for name, run_id in runs:
            while True:
                state = client.read_flow_run(run_id).state
                if (state and state.is_final()) or time.monotonic() > deadline:
                    break
                time.sleep(1)
            state_name = state.name if state else "unknown"
            log.info("run %s: %s; %s", name, state_name, _delivery_summary(run_id))


def _delivery_summary(run_id: str) -> str:
    from sqlalchemy import func, select

    from engine.outcomes import counts_in_words
    from models.db import session_scope
    from models.delivery import Delivery

    with session_scope() as session:
        rows = session.execute(
            select(Delivery.status, Delivery.reason, func.count())
            .where(Delivery.flow_run_id == run_id)
            .group_by(Delivery.status, Delivery.reason)
        ).all()
    said = counts_in_words({(status, reason or ""): count for status, reason, count in rows})
    return f"touches: {said}" if said else "no new touches"


@contextlib.contextmanager
def _running(stack: Stack) -> Iterator[None]:
    try:
        yield
    finally:
        log.info("stopping everything `make up` started …")
        stack.stop()


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM both stop the stack, also when `up` was started in the background
    (a shell without job control starts background jobs with SIGINT ignored)."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def run_up(*, customers: int, port: int) -> int:
    _stop_on_signals()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s  %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "alembic", "prefect"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logs = get_settings().data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stack = Stack(prefect_env(port), logs)
    os.environ.update(stack.env)  # this process talks to the same server through Prefect's client
    with _running(stack):
        try:
            return _bring_up(stack, customers=customers, port=port)
        except RuntimeError as error:
            log.error("%s", error)
            return 1
        except KeyboardInterrupt:
            return 0


def _bring_up(stack: Stack, *, customers: int, port: int) -> int:
    prepare_database(customers)
    channel = choose_channel(stack)
    start_callback(stack)
    log.info("starting the Prefect server (first start takes ~15 s) …")
    start_prefect(stack, port)
    log.info("sending through %s", channel)
    schedule_campaigns()
    runs = trigger_today()
    log.info("triggered today's runs: %s; waiting for them …", ", ".join(n for n, _ in runs))
    wait_for_runs(runs)
    log.info("Prefect UI: http://127.0.0.1:%d  (Runs, Deployments, Artifacts)", port)
    log.info("logs: %s   database: %s", stack.logs, get_settings().database_url)
    log.info("running until Ctrl-C")
    while all(p.poll() is None for _, p in stack.processes):
        time.sleep(1)
    dead = [name for name, p in stack.processes if p.poll() is not None]
    log.error("%s stopped unexpectedly; see %s", ", ".join(dead), stack.logs)
    return 1
