"""collect-results across emulator restarts: a kept state collects as before, a lost one fails loudly."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from channels.emulator.core import WeComEmulator
from core.clock import at_local
from core.errors import UnsettledTouches
from flows.community import community_sop
from flows.maintenance import collect_results
from tests.conftest import use_emulator
from tests.factories import deliveries, make_world

DAY = dt.date(2026, 11, 24)
MORNING = at_local(DAY, 8, 30)
EVENING = at_local(DAY, 21, 0)

PointAt = Callable[[WeComEmulator], WeComEmulator]


@pytest.fixture
def point_at(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[PointAt]:
    """Point the WeCom channel at an emulator (started here, stopped after the test)."""
    started: list[WeComEmulator] = []

    def point(emulator: WeComEmulator) -> WeComEmulator:
        started.append(emulator.start())
        return use_emulator(emulator, monkeypatch)

    make_world(DAY, database_url)
    yield point
    for emulator in started:
        emulator.stop()


def statuses(sop_id: str) -> list[tuple[str, int | None]]:
    return sorted((r.status, r.errcode) for r in deliveries() if r.sop_id == sop_id and r.msgid)


def latest_table(key: str) -> list[dict[str, Any]]:
    """The rows of the newest table artifact `key`."""

    async def read() -> list[dict[str, Any]]:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                sort="CREATED_DESC",
                limit=1,
            )
        return json.loads(str(found[0].data))

    return asyncio.run(read())


def test_rows_sent_before_an_emulator_restart_are_still_collected(
    point_at: PointAt, tmp_path: Path
) -> None:
    state = tmp_path / "emulator-state.sqlite"
    first = point_at(WeComEmulator(state=state))
    community_sop(sop_id="morning-price", day=DAY, now=MORNING)
    first.stop()

    point_at(WeComEmulator(state=state))
    totals = collect_results(now=dt.datetime.now(dt.UTC))

    assert totals["delivered"] == 3 and "unknown" not in totals
    assert statuses("morning-price") == [("delivered", 0)] * 3


def test_msgids_a_fresh_emulator_never_heard_of_become_unknown_and_fail_the_run(
    point_at: PointAt,
) -> None:
    point_at(WeComEmulator())  # state in memory: lost when it stops
    community_sop(sop_id="morning-price", day=DAY, now=MORNING)
    point_at(WeComEmulator())  # "restarted" with nothing remembered
    community_sop(sop_id="evening-flash-sale", day=DAY, now=EVENING)

    state = collect_results(now=dt.datetime.now(dt.UTC), return_state=True)

    assert state.is_failed()
    assert state.message is not None
    assert "WeCom no longer knows 3 mass message(s)" in state.message
    assert "3 touch row(s) marked `unknown`" in state.message and "ops guide" in state.message
    with pytest.raises(UnsettledTouches, match="no longer knows 3"):
        state.result()
    assert statuses("morning-price") == [("unknown", 41047)] * 3
    reasons = {r.reason for r in deliveries() if r.status == "unknown"}
    assert reasons == {
        "WeCom no longer knows this mass message (errcode 41047, invalid msgid): "
        "its results cannot be collected; never resent"
    }
    evening = statuses("evening-flash-sale")
    assert evening and set(evening) == {("delivered", 0)}  # the others were still collected
    table = {row["outcome"]: row["rows"] for row in latest_table("collect-results")}
    assert table == {"messages": 6, "delivered": 3, "unknown": 3, "unknown msgids": 3}


def test_unknown_rows_are_final_so_the_next_poll_is_green(point_at: PointAt) -> None:
    point_at(WeComEmulator())
    community_sop(sop_id="morning-price", day=DAY, now=MORNING)
    point_at(WeComEmulator())
    now = dt.datetime.now(dt.UTC)
    assert collect_results(now=now, return_state=True).is_failed()

    again = collect_results(now=now, return_state=True)

    assert again.is_completed() and again.result()["messages"] == 0
    assert statuses("morning-price") == [("unknown", 41047)] * 3
