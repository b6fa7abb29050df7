"""The `sync-wecom` flow: WeCom is the source of truth for who can be reached."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from tasks.sync import sync_directory_task


@flow(name="sync-wecom")
def sync_wecom(full: bool = True) -> dict[str, Any]:
    """Sync corp tags, staff, customers with their follow relations and tags, and customer groups
    from WeCom; resumes a pass a crash interrupted, writes only what changed, deletes nothing."""
    summary = sync_directory_task(full)
    create_table_artifact(
        key="sync-wecom",
        table=[{"rows": kind, "written": n} for kind, n in sorted(summary["writes"].items())],
        description=f"Directory sync: {summary['pages']} pages, {summary['calls']} WeCom calls, "
        f"{summary['seconds']} s" + (" (resumed)" if summary["resumed"] else ""),
    )
    get_run_logger().info("directory sync %s", summary)
    return summary
