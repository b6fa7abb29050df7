"""Reconciling rows caught in `sending`: pairing chunks with messages, waiting for calls to settle."""

from __future__ import annotations

import datetime as dt

from engine.dispatch import UNANSWERED
from engine.reconcile import SETTLE_MARGIN, StuckRow, match_chunks, wait_until_settled

T0 = dt.datetime(2026, 11, 24, 0, 30, tzinfo=dt.UTC)


def stuck(delivery_id: int, at: dt.datetime, reason: str | None = None) -> StuckRow:
    return StuckRow(
        delivery_id, "group", f"wr{delivery_id}", "zhangwei", "wecom", "早安", reason, at
    )


def listed(msgid: str, at: dt.datetime, targets: list[str] | None = None) -> dict:
    message = {"msgid": msgid, "create_time": int(at.timestamp()), "text": {"content": "早安"}}
    return message if targets is None else {**message, "targets": targets}


def test_two_chunks_of_one_text_each_get_the_message_created_closest_to_their_claim() -> None:
    first, second = T0, T0 + dt.timedelta(minutes=2)
    rows = [stuck(1, first), stuck(2, first), stuck(3, second)]

    found, missing = match_chunks(rows, [listed("m2", second), listed("m1", first)])

    assert {msgid: [r.delivery_id for r in covered] for msgid, (covered, _) in found.items()} == {
        "m1": [1, 2],
        "m2": [3],
    }
    assert missing == []


def test_a_chunk_without_a_message_is_missing_and_a_listing_with_targets_covers_only_those() -> (
    None
):
    rows = [stuck(1, T0), stuck(2, T0), stuck(3, T0 + dt.timedelta(minutes=1))]

    found, missing = match_chunks(rows, [listed("outbox-1", T0, targets=["wr1"])])

    assert [r.delivery_id for r in found["outbox-1"][0]] == [1]
    assert [r.delivery_id for r in missing] == [2, 3]


def test_a_claimed_row_waits_for_its_call_to_time_out_and_an_unanswered_one_only_a_margin() -> None:
    slept: list[float] = []
    in_flight = dt.timedelta(seconds=10)

    now = wait_until_settled(
        [stuck(1, T0, UNANSWERED)], now=T0, in_flight=in_flight, sleep=slept.append
    )
    assert slept == [SETTLE_MARGIN.total_seconds()] and now == T0 + SETTLE_MARGIN
    wait_until_settled(
        [stuck(2, T0)], now=T0 + dt.timedelta(seconds=4), in_flight=in_flight, sleep=slept.append
    )
    assert slept[-1] == 6.0
    assert (
        wait_until_settled(
            [stuck(3, T0)], now=T0 + in_flight, in_flight=in_flight, sleep=slept.append
        )
        == T0 + in_flight
    )
    assert len(slept) == 2
