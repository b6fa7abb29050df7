"""A temporary Prefect server for runs outside `make up`: its output in a log file, stopped in order."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

# Why this exists: Prefect's own temporary server (`prefect_test_harness`, or the one any client
# starts when PREFECT_API_URL is unset) writes to our terminal, and stopping it while its
# task-run recorder still works through a backlog of events cancels a flush, which the recorder
# logs as an ERROR with two `CancelledError` tracebacks. Here the server writes to a log file,
# is stopped only once the recorder has caught up (or `settle_seconds` passed), and what it
# logged while running (warnings, errors) is summed up in one line that names the log.

# A Prefect log record: "21:48:43.328 | WARNING | prefect.server.x - message".
RECORD = re.compile(
    r"^\S+ \| (?P<level>WARNING|ERROR|CRITICAL) +\| (?P<logger>\S+) - (?P<text>.*)$"
)
# The last line of a traceback: "sqlite3.OperationalError: database is locked".
EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*$")
QUIET_WINDOW = 0.5  # seconds without a task run changing state: the recorder has caught up


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")


@dataclass
class QuietServer:
    """A running temporary server: where it listens and where its output goes."""

    api_url: str
    log: Path
    process: subprocess.Popen[bytes]
    problems: str | None = field(default=None)

    def task_run_counts(self) -> dict[str, int]:
        """Task runs per state type, as the server has recorded them so far."""
        response = requests.post(f"{self.api_url}/ui/task_runs/count", json={}, timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def settle(self, seconds: float) -> bool:
        """Wait until the task-run recorder has caught up (no change for QUIET_WINDOW); True if it did."""
        deadline = time.monotonic() + seconds
        last, quiet_since = None, time.monotonic()
        while time.monotonic() < deadline:
            try:
                counts = self.task_run_counts()
            except requests.RequestException:
                return False
            if counts != last:
                last, quiet_since = counts, time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_WINDOW:
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> int:
        """Stop the server (SIGTERM, then SIGKILL after 10 s); the log's size when it was asked to."""
        running_until = self.log.stat().st_size
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return running_until


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def summarize(text: str) -> str | None:
    """One line for the warnings and errors in a server log, most frequent first, each with the
    exception its traceback ended in; None if there are none."""
    levels: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    causes: dict[str, str] = {}
    message = None
    for line in text.splitlines():
        if match := RECORD.match(line):
            levels[match["level"]] += 1
            message = f"{match['logger']}: {match['text'][:90]}"
            messages[message] += 1
        elif message and (raised := EXCEPTION.match(line)):
            causes[message] = raised[0][:90]  # the last one printed is the one raised
    if not levels:
        tracebacks = text.count("Traceback (most recent call last)")
        return _count(tracebacks, "traceback") if tracebacks else None
    counts = ", ".join(_count(n, level.lower()) for level, n in levels.most_common())
    top = "; ".join(
        f"{n:,}× {message}" + (f" [{causes[message]}]" if message in causes else "")
        for message, n in messages.most_common(3)
    )
    return f"{counts} ({top})"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _launch(port: int, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    """The server process, as Prefect starts its own temporary one, writing to `log`.

    Prefect is not imported here: see `quiet_server` on why the client must not be yet.
    """
    spec = importlib.util.find_spec("prefect")
    assert spec is not None and spec.origin is not None, "prefect is not installed"
    env = {
        **os.environ,
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",  # only the services a temporary server needs
        "PREFECT__SERVER_FINAL": "1",
    }
    env.pop("PREFECT_API_URL", None)
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(spec.origin).parents[1])]
            + ["--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1"]
            + ["--port", str(port), "--log-level", "error", "--lifespan", "on"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _start(database_url: str, log: Path, timeout: float) -> QuietServer:
    """Start a server on a free port and wait for /health; a clear error with its log if it fails."""
    deadline = time.monotonic() + timeout
    while True:
        port = _free_port()
        process = _launch(port, database_url, log)
        server = QuietServer(f"http://127.0.0.1:{port}/api", log, process)
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if requests.get(f"{server.api_url}/health", timeout=2).ok:
                    return server
            except requests.RequestException:
                pass
            time.sleep(0.2)
        if process.poll() is None:
            server.stop()
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        if process.returncode == 3 and time.monotonic() < deadline:
            continue  # uvicorn's "address already in use": another process took the port
        raise RuntimeError(
            f"the temporary Prefect server did not answer within {timeout:.0f} s "
            f"(exit code {process.returncode}); its log {log} ends:\n{tail}"
        )


def _drain_client() -> None:
    """Send what this process still holds (logs, events) to the server, as prefect_test_harness does."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        try:
            logs = APILogWorker.instance().drain()
            if inspect.isawaitable(logs):
                await logs
        except RuntimeError:
            pass  # never started
        events = EventsWorker.drain_all()
        if inspect.isawaitable(events):
            await events

    run_coro_as_sync(drain())


@contextmanager
def _environment_variable(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@contextmanager
def quiet_server(
    log: Path | None = None,
    *,
    startup_timeout: float = 120,
    settle_seconds: float = 30,
    report: Callable[[str], None] | None = _say,
    database_url: str | None = None,
) -> Iterator[QuietServer]:
    """Run flows against a temporary Prefect server (fresh database) whose output goes to `log`.

    The client is pointed at it through PREFECT_API_URL, both in the environment and in the
    current settings context. A thread started without a copy of this context (a plain
    `threading.Thread`, a thread pool) reads Prefect's process-wide settings, which Prefect builds
    from the environment when it is first imported: enter this before importing Prefect and
    those threads reach this server too, otherwise only the current context does.

    On exit: this process's logs and events are sent, the server is given up to `settle_seconds`
    to record them, then stopped. Warnings and errors it logged while running are passed to
    `report` as one line naming the log, which is then kept (in the temp folder when `log` is
    None); a log with nothing to report is deleted unless `log` was given.

    The server keeps its state in a fresh SQLite file, or in the empty database `database_url`
    (`postgresql+asyncpg://…`) when given.
    """
    folder = Path(tempfile.mkdtemp(prefix="sopflow-prefect-"))
    log_file = log or folder / "prefect-server.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    starts_at = log_file.stat().st_size if log_file.exists() else 0  # a given log is appended to
    database_url = database_url or f"sqlite+aiosqlite:///{folder / 'prefect.db'}"
    server = _start(database_url, log_file, startup_timeout)
    try:
        with ExitStack() as stack:
            stack.enter_context(_environment_variable("PREFECT_API_URL", server.api_url))
            from prefect.settings import PREFECT_API_URL, temporary_settings

            stack.enter_context(temporary_settings(updates={PREFECT_API_URL: server.api_url}))
            try:
                yield server
            finally:
                _drain_client()
                server.settle(settle_seconds)
    finally:
        running_until = server.stop() if server.process.poll() is None else None
        text = log_file.read_bytes()[starts_at:running_until].decode(errors="replace")
        server.problems = summarize(text)
        if server.problems and log is None:
            kept = Path(tempfile.gettempdir()) / f"{folder.name}.log"
            server.log = Path(shutil.copyfile(log_file, kept))
        if server.problems and report is not None:
            report(f"the temporary Prefect server logged {server.problems}; its log: {server.log}")
        shutil.rmtree(folder, ignore_errors=True)
