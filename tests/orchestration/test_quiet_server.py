"""The quiet temporary server: no Prefect server tracebacks on the terminal, real errors still told."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT
from orchestration.quiet_server import summarize

# A run the way the bench does one: flows against a temporary server, no PREFECT_API_URL. The
# client also sends the server a task-run event for a flow run that does not exist, so the server
# logs a real error (with a traceback) while running: it must be told in one line, not printed.
SCRIPT = textwrap.dedent(
    """
    import sys
    import uuid
    from prefect import flow, task
    from prefect.events import emit_event
    from orchestration.quiet_server import quiet_server

    @task
    def double(n: int) -> int:
        return 2 * n

    @flow
    def tiny(fail: bool) -> int:
        total = sum(double.map(range(10)).result())
        if fail:
            raise ValueError("deliberate failure of the tiny flow")
        return total

    def orphan_task_run_event() -> None:
        emit_event(
            "prefect.task-run.Running",
            resource={"prefect.resource.id": f"prefect.task-run.{uuid.uuid4()}",
                      "prefect.orchestration": "client"},
            related=[{"prefect.resource.id": f"prefect.flow-run.{uuid.uuid4()}",
                      "prefect.resource.role": "flow-run"}],
            payload={"validated_state": {"type": "RUNNING", "name": "Running"},
                     "task_run": {"name": "orphan", "task_key": "orphan", "dynamic_key": "0"}},
        )

    with quiet_server(settle_seconds=10):
        orphan_task_run_event()
        print("total", tiny(fail=False), flush=True)
        sys.stderr.write("=== the failing run ===\\n")
        sys.stderr.flush()
        tiny(fail=True)
    """
)


def run_script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "tiny_run.py"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PYTHONPATH=str(PROJECT_ROOT), PREFECT_HOME=str(tmp_path / "prefect-home"))
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.slow
def test_a_run_outside_a_server_prints_no_server_traceback_and_still_shows_its_own_error(
    tmp_path: Path,
) -> None:
    """Flows on a temporary server: no CancelledError or server traceback on stderr, a failing run's
    own error still shown, and an error the server logged while running named in one line."""
    result = run_script(tmp_path)
    assert "total 90" in result.stdout, result.stderr[-3000:]
    assert result.returncode == 1, result.stderr[-3000:]
    before, _, after = result.stderr.partition("=== the failing run ===")
    assert after, result.stderr[-3000:]
    assert "Traceback" not in before, before[-3000:]
    assert "CancelledError" not in result.stderr, result.stderr[-3000:]
    assert "ValueError: deliberate failure of the tiny flow" in after
    told = [line for line in after.splitlines() if "the temporary Prefect server logged" in line]
    assert len(told) == 1 and " error" in told[0], result.stderr[-3000:]
    raw = [line for line in result.stderr.splitlines() if "prefect.server" in line]
    assert raw == told, "only the one line tells of the server's log"
    log = Path(told[0].rsplit("its log: ", 1)[1])
    assert "Traceback" in log.read_text(encoding="utf-8"), "the server's traceback is in its log"
    log.unlink()


def test_a_server_log_is_summed_up_as_counts_and_its_most_frequent_messages() -> None:
    """Warnings and errors become one line, most frequent first; tracebacks stay in the log."""
    queue_full = (
        "21:48:43.328 | WARNING | prefect.server.utilities.messaging.memory - Subscription queue"
        " is full, dropping message for topic='events' queue_size=10000 retry_queue_size=0"
    )
    flush = (
        "21:51:33.623 | ERROR   | prefect.server.services.task_run_recorder - Error flushing"
        " 1 events (1 to retry, 0 dropped)"
    )
    traceback = [
        "Traceback (most recent call last):",
        '  File "interface.py", line 168, in session_context',
        "sqlite3.OperationalError: database is locked",
        "",
        "The above exception was the direct cause of the following exception:",
        "",
        "Traceback (most recent call last):",
        "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked",
    ]
    line = summarize("\n".join([queue_full] * 3 + [flush, *traceback]))
    assert line is not None
    assert line.startswith("3 warnings, 1 error (3× prefect.server.utilities.messaging.memory:")
    assert line.endswith(
        "; 1× prefect.server.services.task_run_recorder: Error flushing 1 events (1 to retry,"
        " 0 dropped) [sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is"
        " locked])"
    )
    assert "[" not in line.split("; ")[0], "a warning without a traceback has no cause"
    assert "Traceback" not in line
    assert summarize("INFO only\n21:00:00.000 | INFO    | prefect - fine") is None
    assert summarize("Traceback (most recent call last):\n  boom") == "1 traceback"


def test_a_thread_started_without_the_tests_context_reaches_the_session_server() -> None:
    """Plain threads (approval runs in the background, thread pools) read Prefect's process-wide
    settings: the session's server is set there too, not only in the test's context."""
    from prefect.settings import get_current_settings

    seen: list[str] = []
    thread = threading.Thread(target=lambda: seen.append(str(get_current_settings().api.url)))
    thread.start()
    thread.join(10)

    assert seen == [os.environ["PREFECT_API_URL"]]
    assert seen[0].startswith("http://127.0.0.1:")
