"""The review flow on the Prefect engine: artifacts in the UI, the HTML report on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from core.settings import reset_settings
from flows.review import review
from tests.review import world as w
from tests.review.test_review import PERIOD


def test_the_review_flow_publishes_artifacts_and_writes_the_report(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w.build()
    sop_dir = tmp_path / "sop"
    sop_dir.mkdir()
    (sop_dir / "targets.yaml").write_text('deletion_rate_7d: "<= 0.5%"\n', encoding="utf-8")
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(sop_dir))
    monkeypatch.setenv("SOPFLOW_REPORTS_DIR", str(tmp_path / "reports"))
    reset_settings()

    state = review(starts=PERIOD.starts, ends=PERIOD.ends, return_state=True)

    result = state.result()
    assert Path(result["report"]).exists()
    assert result["missed"] == ["deletion_rate_7d"]
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    kinds = {(a.key, a.type) for a in artifacts}
    assert ("review-custom", "markdown") in kinds
    assert {("review-sop", "table"), ("review-uplift", "table")} <= kinds
    summary = next(a for a in artifacts if a.key == "review-custom")
    assert "✗" in str(summary.data) and result["report"] in str(summary.data)
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.name == f"review custom {PERIOD.starts} – {PERIOD.ends}"
    progress = [a for a in artifacts if a.type == "progress"]
    assert progress and progress[0].data == 100.0


def test_the_review_flow_wants_both_ends_of_a_period(database_url: str) -> None:
    with pytest.raises(ValueError, match="give both `starts` and `ends`"):
        review.fn(starts=PERIOD.starts)
