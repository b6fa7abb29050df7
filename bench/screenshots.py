"""`make screenshots`: look at sopflow as an operator would, in headless Chromium, and check what each page says.

A throwaway stack in a temporary folder (never the project's .data/ or .prefect/): a small demo
world, the WeCom emulator, a Prefect server and its UI. Then, page by page:

1. a deployment after `sopflow deployments --apply` changed its schedule (the new time shown);
2. a run paused for approval, its Resume form open: the rendered sample above the staff table;
3. the emulator's sent-messages page, as staff members see their tasks;
4. the review report, its chart labels in Chinese, drawn as text by the browser.

Each page is saved as a PNG under reports/screenshots/ and its text is checked; a missing text
fails the script (exit 1). Needs Debian's chromium (/usr/bin/chromium) with a CJK font
(`apt-get install chromium fonts-noto-cjk`; without the font Chinese is drawn as boxes) and the
`ui` extra (`pip install -e '.[ui]'`, which `make screenshots` does).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
SHOTS = ROOT / "reports" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NEW_CRON = "45 8 * * *"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, seconds: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the process serving it exited ({process.returncode})")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def until(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise SystemExit(f"gave up waiting for {what}")


class Stack:
    """The emulator and the Prefect server, in `workdir`, stopped on exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.emulator = f"http://127.0.0.1:{free_port()}"
        self.ui = f"http://127.0.0.1:{free_port()}"
        self.sop_dir = workdir / "sop"
        shutil.copytree(ROOT / "sop", self.sop_dir)
        os.environ.update(
            SOPFLOW_DATABASE_URL=f"sqlite:///{workdir / 'sopflow.db'}",
            SOPFLOW_DATA_DIR=str(workdir / "data"),
            SOPFLOW_REPORTS_DIR=str(workdir / "reports"),
            SOPFLOW_SOP_DIR=str(self.sop_dir),
            SOPFLOW_APPROVAL_POLL_SECONDS="1",
            SOPFLOW_CHANNEL="wecom",
            WECOM_API_BASE=self.emulator,
            WECOM_CORP_ID="demo-corp",
            WECOM_CORP_SECRET="demo-secret",
            PREFECT_HOME=str(workdir / "prefect"),
            PREFECT_API_URL=f"{self.ui}/api",
            PREFECT_UI_API_URL=f"{self.ui}/api",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
        )

    def start(self, name: str, *command: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def up(self) -> None:
        subprocess.run(
            [str(BIN / "sopflow"), "demo-data", "--customers", "2000"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        port = self.emulator.rsplit(":", 1)[1]
        emulator = self.start("emulator", str(BIN / "sopflow"), "emulator", "--port", port)
        wait_for(f"{self.emulator}/emulator/state", 30, emulator)
        from sopflow.up import tell_emulator_names

        tell_emulator_names(self.emulator)
        server_port = self.ui.rsplit(":", 1)[1]
        server = self.start(
            "server", str(BIN / "prefect"), "server", "start", "--port", server_port
        )
        wait_for(f"{self.ui}/api/health", 120, server)

    def down(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def set_front_matter(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    if old not in text:
        raise SystemExit(f"{path}: expected `{old}` in the front matter")
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def apply(stack: Stack) -> list[str]:
    from sopflow.apply import apply_sop_dir

    outcome = apply_sop_dir(stack.sop_dir, stack.workdir / "prefect.yaml")
    return list(outcome.applied.lines())


def deployment_id(name: str) -> str:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return str(client.read_deployment_by_name(f"community-sop/{name}").id)


def paused_run(name: str) -> str:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    def find() -> str | None:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
            )
        return next((str(r.id) for r in runs if r.state and r.state.is_paused()), None)

    return until(find, 120, f"run {name} to pause for approval")


def shoot(page: Any, url: str, name: str, must_say: list[str], *, before: Any = None) -> str:
    """Open `url`, run `before(page)`, save a PNG and check the page says each of `must_say`."""
    page.goto(url, wait_until="networkidle")
    if before is not None:
        before(page)
    page.wait_for_timeout(1500)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    text = page.inner_text("body")
    missing = [words for words in must_say if words not in text]
    status = "ok" if not missing else f"MISSING {missing}"
    print(f"  {name:<22} {path.relative_to(ROOT)}  {status}")
    return text if not missing else ""


def open_resume_form(page: Any) -> None:
    page.get_by_role("button", name="Resume").first.click()
    page.get_by_text("Rendered sample").first.wait_for(timeout=20_000)


def main() -> int:
    from playwright.sync_api import sync_playwright

    from core.clock import local_today
    from core.settings import reset_settings

    SHOTS.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="sopflow-screens-"))
    stack = Stack(workdir)
    reset_settings()
    failures = 0
    try:
        stack.up()
        from orchestration.prefect_objects import ensure_prefect_objects

        ensure_prefect_objects()
        apply(stack)
        morning = stack.sop_dir / "community" / "morning-price.md"
        set_front_matter(morning, 'cron: "30 8 * * *"', f'cron: "{NEW_CRON}"')
        set_front_matter(morning, "audience:\n", "approval: {over: 1}\naudience:\n")
        reset_settings()
        print("apply after the edit:", "; ".join(apply(stack)))
        day = local_today()
        run = threading.Thread(target=_run_morning_price, args=(day,), daemon=True)
        run.start()
        run_id = paused_run(f"morning-price {day.isoformat()}")
        _send_evening(day)
        report = _review(day)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            print("screenshots:")
            checks = [
                (
                    f"{stack.ui}/deployments/deployment/{deployment_id('morning-price')}",
                    "deployment-applied",
                    ["morning-price", "08:45"],
                    None,
                ),
                (
                    f"{stack.ui}/runs/flow-run/{run_id}",
                    "approval-paused",
                    ["Approval needed", "Rendered sample", "Tasks per staff member"],
                    open_resume_form,
                ),
                (
                    f"{stack.emulator}/",
                    "emulator-sent",
                    ["已发送消息", "员工已确认发送", "晚安"],
                    None,
                ),
                (report.as_uri(), "review-report", ["复盘", "本期"], None),
            ]
            for url, name, must_say, before in checks:
                text = shoot(page, url, name, must_say, before=before)
                failures += not text
                if name == "approval-paused" and text:
                    # The operator reads the sample before the staff table.
                    if text.index("Rendered sample") > text.index("Tasks per staff member"):
                        print("  approval-paused: the staff table comes before the sample")
                        failures += 1
            svg_text = page.locator("svg text").evaluate_all("els => els.map(e => e.textContent)")
            if not any(any("\u4e00" <= ch <= "\u9fff" for ch in t or "") for t in svg_text):
                print("  review-report: no Chinese text inside the charts' <svg>")
                failures += 1
            browser.close()
    finally:
        stack.down()
    print("all pages say what they should" if not failures else f"{failures} page(s) failed")
    return 1 if failures else 0


def _run_morning_price(day: dt.date) -> None:
    from core.clock import at_local
    from flows.community import community_sop

    community_sop(sop_id="morning-price", day=day, now=at_local(day, 8, 45), return_state=True)


def _send_evening(day: dt.date) -> None:
    """The evening flash sale, sent so the emulator and the review have messages to show."""
    from core.clock import at_local
    from flows.community import community_sop

    community_sop(sop_id="evening-flash-sale", day=day, now=at_local(day, 21, 0), return_state=True)


def _review(day: dt.date) -> Path:
    from review.report import make_report

    return Path(make_report(day - dt.timedelta(days=6), day).path)


if __name__ == "__main__":
    raise SystemExit(main())
