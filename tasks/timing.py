"""Seconds spent per pipeline stage in this process, summed over threads (read by `make bench`)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

STAGES = ("audience", "guards", "record", "render", "dispatch")
_spent: Counter[str] = Counter()
_lock = threading.Lock()


@contextmanager
def timed(stage: str) -> Iterator[None]:
    """Add the wall time of the block to `stage`."""
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        with _lock:
            _spent[stage] += elapsed


def spent() -> dict[str, float]:
    """Seconds per stage so far."""
    with _lock:
        return {stage: _spent.get(stage, 0.0) for stage in STAGES}


def reset() -> None:
    with _lock:
        _spent.clear()
