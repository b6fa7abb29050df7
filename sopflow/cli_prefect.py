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
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="Also apply prefect.yaml to the Prefect server at PREFECT_API_URL: add, change "
            "and remove sopflow's deployments so the server runs what sop/ says.",
        ),
    ] = False,
    output: Annotated[Path, typer.Option(help="Where prefect.yaml lives.")] = PROJECT_ROOT
    / "prefect.yaml",
) -> None:
    """Generate prefect.yaml from the SOP files (one deployment per SOP); `--apply` puts it live."""
    if check and apply:
        fail("--check only reads and --apply writes; use one of them")
    if apply:
        _apply(output)
        return
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
    say("to put it live on the running Prefect server: sopflow deployments --apply")


def _apply(output: Path) -> None:
    """Regenerate prefect.yaml and apply it; one line per deployment added, changed or removed."""
    import httpx
    from prefect.settings import get_current_settings

    from sopflow.apply import DeploymentFileError, apply_sop_dir

    api = get_current_settings().api.url
    if not api:
        fail(
            "PREFECT_API_URL is not set; point it at the running Prefect server "
            "(`make up` prints it: http://127.0.0.1:4200/api)"
        )
    with sop_errors():
        try:
            outcome = apply_sop_dir(get_settings().sop_dir, output)
        except DeploymentFileError as error:
            fail(str(error))
        except httpx.HTTPError as error:
            fail(f"could not apply the deployments at {api}: {error}; is the server running?")
    say(f"wrote {output}" if outcome.wrote else f"{output} is already up to date")
    for line in outcome.applied.lines():
        say(line)


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
