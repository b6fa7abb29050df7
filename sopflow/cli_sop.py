"""`sopflow lint` and `sopflow preview`: check SOP files, render a step with real rows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    group: Annotated[str | None, typer.Option(help="Render for this group chat_id.")] = None,
    customer: Annotated[
        str | None, typer.Option(help="Render for this customer external_userid.")
    ] = None,
    date: Annotated[
        str | None, typer.Option(help="Occurrence date YYYY-MM-DD (default: today).")
    ] = None,
) -> None:
    """Render an SOP step with real rows from the database and count its recipients and tasks."""
    from core.clock import local_today
    from core.errors import SopDefinitionError
    from soplang.lint import lint_file

    if group and customer:
        fail("give --group or --customer, not both")
    day = day_option(date, "--date") or local_today(tz=get_settings().timezone)
    with sop_errors():
        # A file with errors is refused as lint reports it, before the database side is imported.
        parsed = lint_file(file)
        if parsed.errors or parsed.spec is None:
            problems = [str(p) for p in parsed.errors]
            raise SopDefinitionError(problems[0] if problems else str(file), problems=problems)
        spec = parsed.spec
        from engine.preview import preview_step

        result = preview_step(spec, step=step, day=day, chat_id=group, customer=customer)
    say(result.report())
