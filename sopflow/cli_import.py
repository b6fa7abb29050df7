"""`sopflow import KIND FILE…`: bring the chain's exports in (docs/imports.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sopflow.cli_common import fail, say


def import_(
    kind: Annotated[
        str, typer.Argument(help="stores, staff, products, members, orders, deals or campaign.")
    ],
    files: Annotated[list[Path], typer.Argument(help="CSV (UTF-8 or GBK), .xlsx or .jsonl files.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only validate: the database is left as it was.")
    ] = False,
    skip_bad: Annotated[
        Path | None,
        typer.Option(
            "--skip-bad",
            metavar="REJECTS.csv",
            help="Write the good rows; the bad ones go to this CSV with the reason per row.",
        ),
    ] = None,
) -> None:
    """Import files of one kind; each file in one transaction, all of it or (by default) nothing."""
    from imports.columns import KINDS
    from imports.rejects import write_rejects
    from imports.run import import_files
    from models.db import upgrade

    if kind not in KINDS:
        fail(f"unknown kind {kind!r}; use one of: {', '.join(KINDS)}")
    upgrade()
    results = import_files(
        kind, files, dry_run=dry_run, skip_bad=skip_bad is not None, progress=_progress
    )
    refused = False
    events: dict[str, int] = {}
    for result in results:
        for problem in result.problems:
            typer.echo(problem, err=True)
        c = result.counts
        encoding = f" ({result.encoding})" if result.encoding else ""
        outcome = (
            "validated only (--dry-run), nothing written"
            if dry_run and (result.ok or skip_bad)
            else "written"
            if result.written
            else "NOTHING written"
        )
        say(
            f"{result.path}{encoding}: {c.rows} rows; {c.new} new, {c.changed} changed, "
            f"{c.unchanged} unchanged, {c.rejected} rejected; {outcome}"
        )
        for note in c.notes:
            say(f"  {note}")
        if result.written:
            for event_kind, count in c.events.items():
                events[event_kind] = events.get(event_kind, 0) + count
        refused = refused or not result.written and not (dry_run and (result.ok or skip_bad))
    rejected = [row for r in results for row in r.rejected]
    if skip_bad is not None and rejected:
        write_rejects(skip_bad, rejected)
        say(f"{len(rejected)} bad row(s) written to {skip_bad} with the reason for each")
    for event_kind, count in events.items():
        say(f"{count} {event_kind} event(s) recorded")
        _announce(event_kind, count)
    if refused:
        raise typer.Exit(1)


def _progress(line: str) -> None:
    typer.echo(line, err=True)


def _announce(kind: str, count: int) -> None:
    from orchestration.events import announce_events

    announced = announce_events(kind, count, source="sopflow import")
    if announced.told:
        say(announced.detail)
    else:
        typer.echo(f"warning: {announced.detail}", err=True)
