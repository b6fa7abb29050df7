"""`serve_forever`: run the emulator in the foreground (the `sopflow emulator` command)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from types import FrameType

from channels.emulator.config import EmulatorConfig
from channels.emulator.core import WeComEmulator

logger = logging.getLogger(__name__)


def serve_forever(
    port: int = 8931,
    *,
    host: str = "127.0.0.1",
    config: EmulatorConfig | None = None,
    state: str | Path | None = None,
) -> None:
    """Serve until Ctrl-C or SIGTERM; `state` is the SQLite file to keep state in (None: memory)."""
    emulator = WeComEmulator(config, host=host, port=port, state=state).start()
    where = f"state in {state}" if state is not None else "state in memory only"
    logger.info("WeCom emulator serving on %s (%s); press Ctrl-C to stop", emulator.url, where)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly on terminate() too
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
