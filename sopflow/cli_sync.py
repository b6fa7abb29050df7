"""`sopflow sync`: read WeCom's directory (tags, staff, customers, groups) into the database now."""

from __future__ import annotations

from typing import Annotated

import typer

from sopflow.cli_common import fail, say


def sync(
    full: Annotated[
        bool, typer.Option("--full", help="Also re-read every group's members (the nightly pass).")
    ] = False,
) -> None:
    """Sync the WeCom directory now; a pass a crash interrupted is resumed, not restarted."""
    from channels.wecom import WeComClient
    from core.errors import ChannelError
    from core.settings import get_settings
    from engine.sync import DirectorySyncError, sync_directory
    from models.db import upgrade

    settings = get_settings()
    upgrade()
    try:
        with WeComClient.from_settings(settings) as client:
            report = sync_directory(client, full=full)
    except (ChannelError, DirectorySyncError) as error:
        fail(f"sync stopped: {error}; run `sopflow sync` again to resume it")
    how = "resumed and finished" if report.resumed else "finished"
    say(
        f"sync pass {report.run_id} {how} in {report.seconds:.1f} s: {report.pages} contact pages, "
        f"{report.groups_read} groups read, {report.calls} WeCom calls"
    )
    writes = ", ".join(f"{kind} {n}" for kind, n in sorted(report.writes.items()))
    say(f"written: {writes or 'nothing (the database already matched WeCom)'}")
