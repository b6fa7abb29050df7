"""The `sopflow` command line: database, demo world, SOP lint/preview, emulator, deployments, up."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

from sopflow.settings import PROJECT_ROOT, get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
db_app = typer.Typer(no_args_is_help=True, help="The sopflow database schema.")
app.add_typer(db_app, name="db")


def _say(text: str) -> None:
    typer.echo(text)


def _fail(text: str, code: int = 1) -> None:
    typer.echo(f"error: {text}", err=True)
    raise typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema of SOPFLOW_DATABASE_URL (Alembic migrations)."""
    from models.db import upgrade

    upgrade()
    _say("database schema is up to date")


@app.command("demo-data")
def demo_data(
    customers: Annotated[int, typer.Option(min=1, help="How many customers to create.")] = 5000,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives the same world.")
    ] = 42,
) -> None:
    """Load the deterministic demo retail world into an empty database."""
    import time

    from models.db import is_empty, upgrade
    from models.demo import load_demo_world

    upgrade()
    if not is_empty():
        _fail(
            "the database already holds customers; point SOPFLOW_DATABASE_URL at a fresh database"
        )
    started = time.perf_counter()
    counts = load_demo_world(
        get_settings().database_url, customers=customers, seed=seed, progress=_say
    )
    summary = ", ".join(f"{table} {rows}" for table, rows in counts.items())
    _say(f"demo world loaded in {time.perf_counter() - started:.1f} s: {summary}")


@app.command("lint")
def lint(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="SOP files or folders (default: sop/).")
    ] = None,
) -> None:
    """Check SOP files; prints `path:line: error: message` lines and exits 1 on any error."""
    from models.sop_lint import main_lint

    raise typer.Exit(main_lint(paths or [get_settings().sop_dir]))


@app.command("preview")
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
    from models.sop_loader import load_sop
    from sopflow.clock import local_today
    from sopflow.errors import SopDefinitionError, SopError
    from sopflow.preview import preview_step

    if group and customer:
        _fail("give --group or --customer, not both")
    try:
        day = dt.date.fromisoformat(date) if date else local_today(tz=get_settings().timezone)
    except ValueError:
        _fail(f"--date {date!r} is not a date; write it as YYYY-MM-DD")
    try:
        spec = load_sop(file)
        result = preview_step(spec, step=step, day=day, chat_id=group, customer=customer)
    except SopDefinitionError as error:
        for problem in error.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(1) from None
    except SopError as error:
        _fail(str(error))
    _say(result.report())


@app.command("emulator")
def emulator(port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8931) -> None:
    """Run the local WeCom emulator until Ctrl-C (point WECOM_API_BASE at it)."""
    from channels.emulator import serve_forever

    _say(f"WeCom emulator on http://127.0.0.1:{port} (Ctrl-C stops it)")
    serve_forever(port)


@app.command("deployments")
def deployments(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if prefect.yaml is stale; write nothing.")
    ] = False,
    output: Annotated[Path, typer.Option(help="Where prefect.yaml lives.")] = PROJECT_ROOT
    / "prefect.yaml",
) -> None:
    """Generate prefect.yaml from the SOP files (one deployment per SOP)."""
    from sopflow.deployments import generate
    from sopflow.errors import SopDefinitionError

    try:
        text = generate(get_settings().sop_dir)
    except SopDefinitionError as error:
        for problem in error.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(1) from None
    current = output.read_text(encoding="utf-8") if output.exists() else None
    if check:
        if current != text:
            _fail(f"{output} is stale; run `sopflow deployments` and commit the result")
        _say(f"{output} is up to date")
        return
    if current != text:
        output.write_text(text, encoding="utf-8")
        _say(f"wrote {output}")
    else:
        _say(f"{output} is already up to date")


@app.command("up")
def up(
    customers: Annotated[
        int, typer.Option(help="Demo customers to load into an empty database.")
    ] = 5000,
    port: Annotated[int, typer.Option(help="Prefect server port.")] = 4200,
) -> None:
    """Run everything locally: schema, demo world, Prefect server, deployments, worker, first runs."""
    from sopflow.up import run_up

    sys.exit(run_up(customers=customers, port=port))


if __name__ == "__main__":
    app()
