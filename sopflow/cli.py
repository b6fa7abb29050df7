"""The `sopflow` command line: database, demo world, SOP lint/preview, emulator, deployments, report, up."""

from __future__ import annotations

import typer

from sopflow import cli_import, cli_local, cli_outbox, cli_prefect, cli_report, cli_sop
from sopflow.cli_callback import callback
from sopflow.cli_campaign import campaign_app
from sopflow.cli_event import event_app
from sopflow.cli_group_welcome import group_welcome
from sopflow.cli_sync import sync
from sopflow.cli_unknown import unknown_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

# Commands in the order `sopflow --help` lists them; each lives in the module of its group.
app.command("demo-data")(cli_local.demo_data)
app.command("import")(cli_import.import_)
app.command("lint")(cli_sop.lint)
app.command("preview")(cli_sop.preview)
app.command("emulator")(cli_local.emulator)
app.command("callback")(callback)
app.command("outbox")(cli_outbox.outbox)
app.command("deployments")(cli_prefect.deployments)
app.command("prefect-setup")(cli_prefect.prefect_setup)
app.command("report")(cli_report.report)
app.command("sync")(sync)
app.command("group-welcome")(group_welcome)
app.command("up")(cli_local.up)

app.add_typer(cli_local.db_app, name="db")
app.add_typer(campaign_app, name="campaign")
app.add_typer(event_app, name="event")
app.add_typer(unknown_app, name="unknown")


def main() -> None:
    """The `sopflow` command: an error sopflow raises on purpose (a database to upgrade, a bad
    event, WeCom refusing) is one `error:` line and exit code 1, never a traceback."""
    from core.errors import SopError

    try:
        app()
    except SopError as error:
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
