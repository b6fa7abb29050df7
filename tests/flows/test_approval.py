"""Operator approval: a large step pauses its run for an approve/reject form, answered through the API."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterName,
    FlowRunFilterStartTime,
)
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import FlowPauseTimeout
from prefect.input import keyset_from_paused_state

from core.clock import at_local, utcnow
from core.settings import PROJECT_ROOT, reset_settings
from engine.approval import (
    REJECTED,
    TIMED_OUT,
    ApprovalCheck,
    ApprovalView,
    rejection_reason,
    summary_markdown,
)
from engine.outcomes import RunTally
from flows.approval import Approval
from flows.community import community_sop
from flows.customers import customer_sop
from models.deliveries import Occurrence
from soplang.loader import find_sop
from tests.factories import add_customers, deliveries, make_world

DAY = dt.date(2026, 11, 24)
MORNING = at_local(DAY, 8, 30)
RUN_NAME = "morning-price 2026-11-24"
NO_DEALS = "no morning deals today for this group's theme"
APPROVAL_KEY = "morning-price-main-approval"


@pytest.fixture
def world(database_url: str):
    return make_world(DAY, database_url)


@pytest.fixture
def approval_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    return approval_sop(tmp_path, monkeypatch)


def approval_sop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Set `approval: {over: N}` on a copy of the shipped morning-price SOP; answers polled each second."""
    folder = tmp_path / "sop"
    shutil.copytree(PROJECT_ROOT / "sop" / "community", folder / "community")
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder))
    monkeypatch.setenv("SOPFLOW_APPROVAL_POLL_SECONDS", "1")
    reset_settings()

    def set_over(over: int) -> None:
        path = folder / "community" / "morning-price.md"
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("audience:", f"approval: {{over: {over}}}\naudience:", 1))

    return set_over


class Background:
    """A flow run in a thread of this process, against the session's Prefect server
    (by default the morning-price community run)."""

    def __init__(self, run: Callable[[], Any] | None = None) -> None:
        self.run = run or (lambda: community_sop(sop_id="morning-price", day=DAY, now=MORNING))
        self.result: Any = None
        self.error: BaseException | None = None
        self.started = utcnow()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self.run()
        except BaseException as error:  # handed to the test thread by join()
            self.error = error

    def join(self, timeout: float = 30) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the flow run did not finish"
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture
def background() -> Iterator[list[Background]]:
    yield from background_runs()


def background_runs() -> Iterator[list[Background]]:
    """Flow runs a test starts in threads, waited for when it ends."""
    runs: list[Background] = []
    yield runs
    for run in runs:
        run.thread.join(30)


def paused_run(started: dt.datetime, deadline: float = 20, name: str = RUN_NAME) -> FlowRun:
    """Poll the Prefect API until this test's run is Paused."""
    flow_run_filter = FlowRunFilter(
        name=FlowRunFilterName(any_=[name]),
        start_time=FlowRunFilterStartTime(after_=started - dt.timedelta(seconds=1)),
    )
    end = time.monotonic() + deadline
    with get_client(sync_client=True) as client:
        while time.monotonic() < end:
            runs = client.read_flow_runs(flow_run_filter=flow_run_filter)
            paused = [r for r in runs if r.state and r.state.is_paused()]
            if paused:
                return paused[0]
            time.sleep(0.2)
    raise AssertionError("the flow run never paused")


def approval_markdown(flow_run_id: UUID, key: str = APPROVAL_KEY) -> str:
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            )
        )
    assert len(artifacts) == 1
    return str(artifacts[0].data)


def resume(flow_run_id: UUID, run_input: dict[str, Any]) -> str:
    with get_client(sync_client=True) as client:
        return str(client.resume_flow_run(flow_run_id, run_input=run_input).status.value)


def test_a_step_over_the_threshold_pauses_with_a_summary_and_sends_once_approved(
    world, approval_over, background
) -> None:
    approval_over(1)
    background.append(run := Background())

    paused = paused_run(run.started)

    markdown = approval_markdown(paused.id)
    assert "audience: **4 group(s)**" in markdown and "approval over 1" in markdown
    assert "touches to send: **3**" in markdown
    assert "| zhangwei.bj01 | 2 |" in markdown and "| lina.sh01 | 1 |" in markdown
    assert "**3** mass-message task(s) across **2** staff member(s)" in markdown
    assert "北京生鲜爱好者群" in markdown and "鸡蛋3.99元/斤" in markdown
    # The sample comes first, before the audience and the staff table.
    assert markdown.index("鸡蛋3.99元/斤") < markdown.index("| zhangwei.bj01 | 2 |")
    # Recorded and rendered while the operator decides, nothing sent.
    assert sorted(r.status for r in deliveries()) == ["planned", "planned", "planned", "skipped"]
    with get_client(sync_client=True) as client:
        keyset = keyset_from_paused_state(paused.state)
        assert "approve" in str(client.read_flow_run_input(paused.id, keyset["schema"]))
        assert "4 group(s)" in str(client.read_flow_run_input(paused.id, keyset["description"]))
    assert resume(paused.id, {"approve": "maybe"}) == "REJECT"  # a bad answer is refused
    assert resume(paused.id, {"approve": True, "note": "ok"}) == "ACCEPT"
    summaries = run.join()

    assert sorted(r.status for r in deliveries()) == ["sent", "sent", "sent", "skipped"]
    assert summaries[0]["this_run"]["sent"] == 3


def test_a_rejected_step_records_every_group_as_skipped_and_sends_nothing(
    world, approval_over, background, database_url: str
) -> None:
    approval_over(1)
    background.append(run := Background())
    paused = paused_run(run.started)

    assert resume(paused.id, {"approve": False, "note": "  prices\n not checked yet "}) == "ACCEPT"
    summaries = run.join()

    reason = f"{REJECTED}: prices not checked yet"
    rows = deliveries()
    assert len(rows) == 4
    assert sorted((r.status, r.reason) for r in rows) == [
        ("skipped", NO_DEALS),
        ("skipped", reason),
        ("skipped", reason),
        ("skipped", reason),
    ]
    assert all(r.idempotency_key.startswith("morning-price:main:2026-11-24:group:") for r in rows)
    assert summaries[0]["this_run"] == {f"skipped:{reason}": 3, f"skipped:{NO_DEALS}": 1}
    outbox = Path(database_url.split(":///", 1)[1]).parent / "data" / "outbox"
    assert not list(outbox.glob("*.jsonl"))
    # The occurrence stays rejected: a later run neither asks again nor sends.
    assert community_sop(sop_id="morning-price", day=DAY, now=MORNING)[0]["this_run"] == {}


def test_a_step_at_or_under_the_threshold_runs_without_pausing(world, approval_over) -> None:
    approval_over(4)

    summaries = community_sop(sop_id="morning-price", day=DAY, now=MORNING)

    assert summaries[0]["this_run"]["sent"] == 3
    assert sorted(r.status for r in deliveries()) == ["sent", "sent", "sent", "skipped"]


def test_an_unanswered_approval_records_not_approved_in_time_and_fails_the_run(
    world, approval_over, monkeypatch: pytest.MonkeyPatch
) -> None:
    approval_over(1)
    monkeypatch.setenv("SOPFLOW_APPROVAL_TIMEOUT_HOURS", "0.0005")  # 2 s
    reset_settings()

    with pytest.raises(FlowPauseTimeout, match=TIMED_OUT):
        community_sop(sop_id="morning-price", day=DAY, now=MORNING)

    assert {(r.status, r.reason) for r in deliveries()} == {
        ("skipped", TIMED_OUT),
        ("skipped", NO_DEALS),
    }


def test_a_rejection_note_is_collapsed_and_cut_to_fit_the_reason_column() -> None:
    assert rejection_reason() == REJECTED
    assert rejection_reason(" too \n many ") == f"{REJECTED}: too many"
    assert len(rejection_reason("x" * 500)) == 255


def test_approval_on_a_1to1_sop_pauses_its_run_like_a_group_sop(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, background, emulator
) -> None:
    folder = tmp_path / "sop"
    shutil.copytree(PROJECT_ROOT / "tests" / "fixtures" / "sop_customer", folder)
    path = folder / "dormant-care.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("audience:\n", "approval: {over: 10}\naudience:\n", 1))
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder))
    monkeypatch.setenv("SOPFLOW_APPROVAL_POLL_SECONDS", "1")
    reset_settings()
    make_world(DAY, database_url)
    add_customers(30)
    add_customers(20, owner="lina.sh01", first=30, region="北京")
    ten = at_local(DAY, 10, 0)
    background.append(
        run := Background(
            lambda: customer_sop(sop_id="dormant-care", step="care", day=DAY, now=ten)
        )
    )

    paused = paused_run(run.started, name="dormant-care care 2026-11-24")

    markdown = approval_markdown(paused.id, key="dormant-care-care-approval")
    assert "audience: **50 customer(s)**" in markdown and "approval over 10" in markdown
    assert "| zhangwei.bj01 | 1 |" in markdown and "| lina.sh01 | 1 |" in markdown
    assert "的老朋友，好久不见" in markdown
    assert emulator.messages == []  # recorded, nothing sent while the operator decides
    statuses = {r.status for r in deliveries()}
    assert "planned" in statuses and statuses <= {"planned", "skipped"}  # skipped: holdout
    assert resume(paused.id, {"approve": True}) == "ACCEPT"
    summary = run.join()

    assert len(emulator.messages) == 2
    assert summary["this_run"]["sent"] == sum(r.status == "sent" for r in deliveries()) > 0
    # Approved and sent: a re-run neither asks again nor sends.
    again = customer_sop(sop_id="dormant-care", step="care", day=DAY, now=ten)
    assert again["this_run"] == {} and len(emulator.messages) == 2


def test_the_summary_shows_the_sample_first_then_the_top_ten_staff_members_and_the_total() -> None:
    spec = find_sop("morning-price", PROJECT_ROOT / "sop")
    staff = Counter({f"staff{i:02d}.bj": 12 - i for i in range(12)})  # 12, 11, … 1 task(s)
    view = ApprovalView(staff, sample="今日鸡蛋3.99元/斤,限前200单", sample_for="北京生鲜爱好者群")

    markdown = summary_markdown(
        spec,
        Occurrence("morning-price", "main", "2026-11-24", "wecom"),
        ApprovalCheck(to_send=90, over=50),
        view,
        RunTally(recipients=90),
        kind="group",
        timeout_hours=6,
    )

    lines = markdown.splitlines()
    rows = [line for line in lines if line.startswith("| staff") and ".bj |" in line]
    assert rows == [f"| staff{i:02d}.bj | {12 - i} |" for i in range(10)]
    assert lines[lines.index(rows[-1]) + 1 :][:2] == [
        "| … 2 more staff members | 3 |",  # staff10 (2) and staff11 (1)
        "| **total** | **78** |",
    ]
    assert "**78** mass-message task(s) across **12** staff member(s)" in markdown
    assert markdown.index("鸡蛋3.99元/斤") < markdown.index("## Audience") < rows_at(markdown)
    assert "for 北京生鲜爱好者群:" in markdown


def rows_at(markdown: str) -> int:
    return markdown.index("| staff member |")


def test_the_approval_form_reads_right_for_the_uis_toggle() -> None:
    field = Approval.model_json_schema()["properties"]["approve"]

    assert field["title"] == "Approve" and field["default"] is False
    assert field["description"].startswith("On: send this step")
    assert "Off: reject the step" in field["description"]
    assert "tick" not in field["description"].lower()


def test_a_night_run_over_the_threshold_waits_without_asking_and_the_morning_run_asks(
    world, approval_over, background
) -> None:
    approval_over(1)

    night = community_sop(sop_id="morning-price", day=DAY, now=at_local(DAY, 2, 30))

    assert night[0]["deferred"] == 4 and night[0]["this_run"] == {
        "planned:deferred: quiet hours": 4
    }
    background.append(run := Background())
    paused = paused_run(run.started)
    assert "touches to send: **3**" in approval_markdown(paused.id)
    assert resume(paused.id, {"approve": True}) == "ACCEPT"
    run.join()
    assert sorted(r.status for r in deliveries()) == ["sent", "sent", "sent", "skipped"]
