"""`sopflow lint` and `sopflow preview`: check SOP files, render a step with real rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from core.settings import get_settings
from sopflow.cli_common import day_option, fail, say, sop_errors


def lint(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="SOP files or folders (default: sop/).")
    ] = None,
) -> None:
    """Check SOP files (and a folder's targets.yaml); prints `path:line: error: message` lines and exits 1 on any error."""
    from core.errors import TargetsError
    from review.kpis import KPIS
    from review.targets import TARGETS_FILE, load_targets
    from soplang.lint import main_lint

    folders = paths or [get_settings().sop_dir]
    code = main_lint(folders)
    for folder in folders:
        if (folder / TARGETS_FILE).is_file():
            try:
                load_targets(folder / TARGETS_FILE, {n: d.label for n, d in KPIS.items()})
            except TargetsError as error:
                typer.echo(str(error))
                code = 1
    raise typer.Exit(code)


def preview(
    file: Annotated[Path, typer.Argument(help="The SOP file.")],
    step: Annotated[str | None, typer.Option(help="Step to render (default: the first).")] = None,
    date: Annotated[
        str | None, typer.Option(help="Occurrence date YYYY-MM-DD (default: today).")
    ] = None,
    group: Annotated[
        str | None, typer.Option(help="Group SOPs: render for this group chat_id.")
    ] = None,
    customer: Annotated[
        str | None,
        typer.Option(help="1:1, lifecycle, trigger SOPs: render for this external_userid."),
    ] = None,
    campaign: Annotated[
        str | None,
        typer.Option(help="Promotion SOPs: the campaign code (default: the newest running it)."),
    ] = None,
    event: Annotated[
        str | None, typer.Option(help="Trigger SOPs: the event kind (default: the SOP's `on`).")
    ] = None,
    payload: Annotated[
        str | None,
        typer.Option(
            help="Trigger SOPs: JSON overriding the event's payload, e.g. '{\"order_id\": 123}'."
        ),
    ] = None,
) -> None:
    """Show what a run of an SOP step sends: whether it runs on the date, its audience, WeCom
    tasks per staff member and the rendered message, from real rows in the database."""
    from core.clock import local_today
    from soplang.loader import load_sop

    if group and customer:
        fail("give --group or --customer, not both")
    day = day_option(date, "--date") or local_today(tz=get_settings().timezone)
    overrides = _payload_option(payload)
    with sop_errors():
        # A file with errors is refused as lint reports it, before the database side is imported.
        spec = load_sop(file)
        from engine.preview import PreviewRequest, preview_sop

        request = PreviewRequest(
            day=day,
            step=step,
            group=group,
            customer=customer,
            campaign=campaign,
            event=event,
            payload=overrides,
        )
        result = preview_sop(spec, request)
    say(result.report())


def _payload_option(text: str | None) -> dict[str, Any] | None:
    """--payload as a JSON object; anything else is refused with an example."""
    if text is None:
        return None
    example = "e.g. --payload '{\"order_id\": 123}'"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"--payload is not JSON ({error.msg} at character {error.pos}); {example}")
    if not isinstance(value, dict):
        fail(f"--payload must be a JSON object with keys, not {type(value).__name__}; {example}")
    return value
