"""Run sopflow on this machine: `sopflow db upgrade`, `demo-data`, `emulator` and `up`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from core.settings import get_settings
from sopflow.cli_common import fail, say

db_app = typer.Typer(no_args_is_help=True, help="The sopflow database schema.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema of SOPFLOW_DATABASE_URL (Alembic migrations)."""
    from models.db import upgrade

    upgrade()
    say("database schema is up to date")


def demo_data(
    customers: Annotated[int, typer.Option(min=1, help="How many customers to create.")] = 5000,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives the same world.")
    ] = 42,
    as_files: Annotated[
        Path | None,
        typer.Option(
            "--as-files",
            help="Write the world as import files into this folder instead (see docs/imports.md).",
        ),
    ] = None,
) -> None:
    """Load the deterministic demo retail world into an empty database."""
    import time

    from demo.world import load_demo_world
    from models.db import is_empty, upgrade

    if as_files is not None:
        from demo.as_files import demo_as_files

        for kind, path in demo_as_files(as_files, customers=customers, seed=seed).items():
            say(f"{kind}: {path}")
        say("import them in this order: sopflow import KIND FILE (docs/imports.md)")
        return
    upgrade()
    if not is_empty():
        fail("the database already holds customers; point SOPFLOW_DATABASE_URL at a fresh database")
    started = time.perf_counter()
    counts = load_demo_world(
        get_settings().database_url, customers=customers, seed=seed, progress=say
    )
    summary = ", ".join(f"{table} {rows}" for table, rows in counts.items())
    say(f"demo world loaded in {time.perf_counter() - started:.1f} s: {summary}")


def emulator(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8931,
    state: Annotated[
        Path | None,
        typer.Option(
            help="SQLite file for its state (default: emulator-state.sqlite in the data dir)."
        ),
    ] = None,
    memory: Annotated[
        bool, typer.Option("--memory", help="Keep the state in memory only; a restart forgets it.")
    ] = False,
) -> None:
    """Run the local WeCom emulator until Ctrl-C (point WECOM_API_BASE at it); its state survives restarts."""
    from channels.emulator.main import serve_forever
    from channels.emulator.persistence import STATE_FILE

    if memory and state is not None:
        fail("give --state or --memory, not both")
    path = None if memory else state or get_settings().data_dir / STATE_FILE
    kept = "in memory only" if path is None else f"in {path}"
    say(f"WeCom emulator on http://127.0.0.1:{port}, state {kept} (Ctrl-C stops it)")
    serve_forever(port, state=path)


def up(
    customers: Annotated[
        int, typer.Option(help="Demo customers to load into an empty database.")
    ] = 5000,
    port: Annotated[int, typer.Option(help="Prefect server port.")] = 4200,
    postgres: Annotated[
        bool,
        typer.Option(
            "--postgres",
            help="sopflow's and the Prefect server's databases on a local PostgreSQL (.data/pg).",
        ),
    ] = False,
    postgres_url: Annotated[
        str | None,
        typer.Option(
            help="…or on this PostgreSQL server: the URL of sopflow's database; Prefect's is "
            "<name>_prefect there unless PREFECT_SERVER_DATABASE_CONNECTION_URL is set.",
        ),
    ] = None,
) -> None:
    """Run everything locally: schema, demo world, Prefect server, deployments, worker, first runs."""
    if postgres or postgres_url:
        from sopflow.up_pg import run_up_postgres

        sys.exit(run_up_postgres(customers=customers, port=port, url=postgres_url))
    from sopflow.up import run_up

    sys.exit(run_up(customers=customers, port=port))
