"""Seconds spent per pipeline stage in this process, summed over threads (read by `make bench`),
and a pause of the cyclic garbage collector for batch work."""

from __future__ import annotations

import gc
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

STAGES = ("audience", "guards", "record", "render", "dispatch")
_spent: defaultdict[str, float] = defaultdict(float)
_spans: dict[str, tuple[float, float]] = {}  # stage -> (first start, last end), perf_counter
_lock = threading.Lock()


@contextmanager
def timed(stage: str) -> Iterator[None]:
    """Add the wall time of the block to `stage`."""
    started = time.perf_counter()
    try:
        yield
    finally:
        ended = time.perf_counter()
        with _lock:
            _spent[stage] += ended - started
            first, last = _spans.get(stage, (started, ended))
            _spans[stage] = (min(first, started), max(last, ended))


def spent() -> dict[str, float]:
    """Seconds per stage so far."""
    with _lock:
        return {stage: _spent.get(stage, 0.0) for stage in STAGES}


def spans(since: float) -> dict[str, tuple[float, float]]:
    """When each stage first started and last ended, in seconds after `since` (a perf_counter)."""
    with _lock:
        return {stage: (first - since, last - since) for stage, (first, last) in _spans.items()}


def reset() -> None:
    with _lock:
        _spent.clear()
        _spans.clear()


_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch builds ~10^5 short-lived, acyclic objects.

    Reference counting still frees them; without the pause, collections triggered by the
    allocation count traverse every live object again and again (half the time of a batch).
    Nested and concurrent pauses (worker threads) end when the last one does.
    """
    global _gc_pauses, _gc_was_enabled
    with _lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()
