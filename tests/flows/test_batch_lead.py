"""A large audience's first batch is cut into a small lead, so the single writer starts recording
while the rest of the batch is read; every id stays in exactly one range."""

from __future__ import annotations

from flows.pipeline import LEAD, led_in


def test_the_first_of_several_ranges_is_cut_into_a_lead_and_the_rest() -> None:
    ranges = [(1, 1000), (1001, 2000), (2001, 2500)]

    led = led_in(ranges)

    assert led == [(1, 1 + 999 // LEAD), (2 + 999 // LEAD, 1000), (1001, 2000), (2001, 2500)]
    covered = [i for low, high in led for i in range(low, high + 1)]
    assert covered == list(range(1, 2501))


def test_one_range_or_a_first_range_too_small_to_cut_stays_as_it_is() -> None:
    assert led_in([(1, 1000)]) == [(1, 1000)]
    assert led_in([(7, 8), (9, 100)]) == [(7, 8), (9, 100)]
    assert led_in([]) == []
