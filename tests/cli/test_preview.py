"""`sopflow preview` on every shipped SOP against a small demo world, and without Prefect."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.settings import PROJECT_ROOT, reset_settings
from demo.world import load_demo_world
from models import db
from sopflow.cli import app
from soplang.spec import KINDS

DAY = dt.date(2026, 11, 24)  # a Tuesday; the demo's campaign starts the next morning
SOP_DIR = PROJECT_ROOT / "sop"
SOP_FILES = sorted(p for p in SOP_DIR.rglob("*.md") if p.name != "README.md")


@pytest.fixture(scope="module")
def demo_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A small demo world loaded once for the module, the settings pointed at it."""
    tmp = tmp_path_factory.mktemp("preview-demo")
    url = f"sqlite:///{tmp / 'sopflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOPFLOW_DATABASE_URL", url)
        patch.setenv("SOPFLOW_DATA_DIR", str(tmp / "data"))
        patch.setenv("SOPFLOW_REPORTS_DIR", str(tmp / "reports"))
        reset_settings()
        db.dispose_engines()
        db.upgrade(url)
        load_demo_world(url, customers=400, today=DAY)
        yield url
        db.dispose_engines()
    reset_settings()


def preview(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["preview", *args])
    return result.exit_code, result.output


def message_of(output: str) -> str:
    """The rendered text: everything after the `message 文案 for …:` line."""
    head, found, text = output.partition("\nmessage 文案 for ")
    assert found, output
    return text.split("\n", 1)[1].strip()


def test_the_loop_below_covers_every_kind_of_sop() -> None:
    """Every kind the SOP language has is shipped in sop/, so the loop previews each kind."""
    kinds = {
        line.split(":", 1)[1].strip()
        for path in SOP_FILES
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("kind:")
    }
    assert kinds == set(KINDS)


@pytest.mark.parametrize("path", SOP_FILES, ids=lambda p: str(p.relative_to(SOP_DIR)))
def test_preview_prints_the_audience_and_a_rendered_message_for_every_shipped_sop(
    demo_world: str, path: Path
) -> None:
    """Each shipped SOP's first step renders for a real target of the demo world."""
    code, output = preview(str(path), "--date", DAY.isoformat())

    assert code == 0, output
    assert "\naudience 受众: " in output
    assert "Traceback" not in output and "nothing renders" not in output
    text = message_of(output)
    assert text and "{{" not in text


def test_every_step_of_the_promotion_renders_for_the_demo_campaign(demo_world: str) -> None:
    """Preview, burst and recap of the demo's 双12 campaign, each with when it is due."""
    path = str(SOP_DIR / "promotion" / "double12.md")
    outputs = {step: preview(path, "--step", step) for step in ("preview", "burst", "recap")}

    for code, output in outputs.values():
        assert code == 0, output
        assert f"campaign 活动 double12-{DAY.year} · 双12年终大促 (draft)" in output
        assert message_of(output)
    assert "step `preview` is due 2026-11-24 20:00 (Asia/Shanghai)" in outputs["preview"][1]
    assert "step `burst` is due 2026-11-25 10:00" in outputs["burst"][1]
    recap = outputs["recap"][1]
    assert "recap stats 战报: orders from `burst`" in recap and "战报来啦" in recap


def test_a_lifecycle_step_says_which_entry_day_its_audience_is(demo_world: str) -> None:
    """dormant-recall's coupon on a day goes to those who turned dormant three days before."""
    code, output = preview(
        str(SOP_DIR / "lifecycle" / "dormant-recall.md"), "--step", "coupon", "--date", "2026-11-24"
    )

    assert code == 0, output
    assert "who entered it on 2026-11-21 (3 days before)" in output
    assert (
        "runs on 2026-11-24 (周二) at 10:00 (Asia/Shanghai): lifecycle steps run every day"
        in output
    )
    assert message_of(output)


def test_preview_runs_without_importing_prefect(demo_world: str) -> None:
    """The preview path of the command line never imports Prefect (it costs seconds)."""
    script = (
        "import sys\n"
        "from sopflow.cli import app\n"
        "code = 'no exit'\n"
        "try:\n"
        f"    app(['preview', {str(SOP_DIR / 'community' / 'morning-price.md')!r}, '--date', '{DAY}'])\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "loaded = sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.'))\n"
        "print('EXIT', code, 'PREFECT', len(loaded), loaded[:3])\n"
    )
    env = {**os.environ, "SOPFLOW_DATABASE_URL": demo_world}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=60,
    )

    assert "EXIT 0 PREFECT 0 []" in done.stdout, done.stdout + done.stderr
    assert "message 文案 for" in done.stdout
