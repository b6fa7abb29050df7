"""What sopflow sets up in Prefect: `sopflow deployments` (prefect.yaml) and `sopflow prefect-setup`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.settings import PROJECT_ROOT, get_settings
from sopflow.cli_common import fail, say, sop_errors


def deployments(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if prefect.yaml is stale; write nothing.")
    ] = False,
    output: Annotated[Path, typer.Option(help="Where prefect.yaml lives.")] = PROJECT_ROOT
    / "prefect.yaml",
) -> None:
    """Generate prefect.yaml from the SOP files (one deployment per SOP)."""
    from sopflow.deployments import generate

    with sop_errors():
        text = generate(get_settings().sop_dir)
    current = output.read_text(encoding="utf-8") if output.exists() else None
    if check:
        if current != text:
            fail(f"{output} is stale; run `sopflow deployments` and commit the result")
        say(f"{output} is up to date")
        return
    if current != text:
        output.write_text(text, encoding="utf-8")
        say(f"wrote {output}")
    else:
        say(f"{output} is already up to date")


def prefect_setup() -> None:
    """Create or update the Prefect objects the flows rely on at PREFECT_API_URL: the wecom-api
    call limit and the automation marking runs whose heartbeats stop as Crashed."""
    import httpx
    from prefect.settings import get_current_settings

    from orchestration.prefect_objects import ensure_prefect_objects

    api = get_current_settings().api.url
    if not api:
        fail("PREFECT_API_URL is not set; point it at the Prefect server the workers use")
    try:
        done = ensure_prefect_objects()
    except httpx.HTTPError as error:
        fail(f"could not set up Prefect at {api}: {error}")
    for name, outcome in done.items():
        say(f"{name}: {outcome}")
