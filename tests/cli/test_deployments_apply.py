"""`sopflow deployments --apply` puts an edited sop/ live on the running server and says what it did."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner

from core.settings import PROJECT_ROOT, reset_settings
from sopflow.apply import managed_flow_names
from sopflow.cli import app


@pytest.fixture
def sop_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of sop/ the settings point at, on a server without any of sopflow's deployments."""
    copy = tmp_path / "sop"
    shutil.copytree(PROJECT_ROOT / "sop", copy)
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(copy))
    reset_settings()
    with get_client(sync_client=True) as client:
        for deployment in client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=sorted(managed_flow_names())))
        ):
            client.delete_deployment(deployment.id)
    yield copy
    monkeypatch.undo()  # before forgetting the settings, so the next read sees sop/ again
    reset_settings()


def apply(output: Path) -> list[str]:
    result = CliRunner().invoke(app, ["deployments", "--apply", "--output", str(output)])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_apply_writes_prefect_yaml_and_says_what_it_added_changed_and_removed(
    sop_dir: Path, tmp_path: Path
) -> None:
    output = tmp_path / "prefect.yaml"

    first = apply(output)
    sop = sop_dir / "community" / "morning-price.md"
    sop.write_text(sop.read_text(encoding="utf-8").replace("30 8 * * *", "0 8 * * *"), "utf-8")
    (sop_dir / "community" / "evening-flash-sale.md").unlink()
    second = apply(output)
    third = apply(output)

    assert first[0] == f"wrote {output}"
    assert "added: morning-price" in first and "added: drain-events" in first
    assert "0 8 * * *" in output.read_text(encoding="utf-8")
    assert second[0] == f"wrote {output}"
    assert (
        "changed: morning-price (schedule 30 8 * * * Asia/Shanghai → 0 8 * * * Asia/Shanghai)"
        in second
    )
    assert "removed: evening-flash-sale (no longer generated; its scheduled runs deleted)" in second
    assert not [line for line in second if line.startswith("added:")]
    assert third[0] == f"{output} is already up to date"
    (unchanged,) = [line for line in third if line.startswith("unchanged: ")]
    assert "morning-price" in unchanged and len(third) == 2


def test_check_and_apply_together_are_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["deployments", "--check", "--apply", "--output", str(tmp_path / "p.yaml")]
    )

    assert result.exit_code == 1
    assert "use one of them" in result.output
    assert not (tmp_path / "p.yaml").exists()


def test_apply_without_a_server_says_how_to_point_at_one(tmp_path: Path) -> None:
    with temporary_settings(updates={PREFECT_API_URL: None}):
        result = CliRunner().invoke(
            app, ["deployments", "--apply", "--output", str(tmp_path / "p.yaml")]
        )

    assert result.exit_code == 1
    assert "PREFECT_API_URL is not set" in result.output


def test_a_broken_sop_is_reported_and_nothing_is_applied(sop_dir: Path, tmp_path: Path) -> None:
    sop = sop_dir / "community" / "morning-price.md"
    sop.write_text(sop.read_text(encoding="utf-8").replace("30 8 * * *", "30 25 * * *"), "utf-8")

    result = CliRunner().invoke(
        app, ["deployments", "--apply", "--output", str(tmp_path / "prefect.yaml")]
    )

    assert result.exit_code == 1
    assert "morning-price.md" in result.output
    assert not (tmp_path / "prefect.yaml").exists()
    with get_client(sync_client=True) as client:
        assert not client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=sorted(managed_flow_names())))
        )
