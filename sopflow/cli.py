"""The `sopflow` command line: database, demo world, SOP lint/preview, emulator, deployments, report, up."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from core.settings import PROJECT_ROOT, get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
db_app = typer.Typer(no_args_is_help=True, help="The sopflow database schema.")
app.add_typer(db_app, name="db")
campaign_app = typer.Typer(
    no_args_is_help=True, help="Promotion campaigns: scheduled runs of their SOP's steps."
)
app.add_typer(campaign_app, name="campaign")
event_app = typer.Typer(
    no_args_is_help=True, help="Events that trigger SOPs: record one by hand, or a price drop."
)
app.add_typer(event_app, name="event")


def _say(text: str) -> None:
    typer.echo(text)


def _fail(text: str, code: int = 1) -> None:
    typer.echo(f"error: {text}", err=True)
    raise typer.Exit(code)


@contextmanager
def _sop_errors() -> Iterator[None]:
    """An SOP file's problems one per line (a template's as `path:line: error: …` too), any other
    SopError as one `error:` line; exit 1."""
    from core.errors import SopDefinitionError, SopError, TemplateError

    try:
        yield
    except SopDefinitionError as error:
        for problem in error.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(1) from None
    except TemplateError as error:
        path, line = getattr(error, "path", None), getattr(error, "line", None)
        if path is None or line is None:
            _fail(str(error))
        typer.echo(f"{path}:{line}: error: {getattr(error, 'detail', error.message)}", err=True)
        raise typer.Exit(1) from None
    except SopError as error:
        _fail(str(error))


def _day_option(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"{option} {value!r} is not a date; write it as YYYY-MM-DD")
    return None


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

    from demo import load_demo_world
    from models.db import is_empty, upgrade

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
    """Check SOP files (and a folder's targets.yaml); prints `path:line: error: message` lines and exits 1 on any error."""
    from core.errors import TargetsError
    from review.targets import TARGETS_FILE, load_targets
    from soplang.lint import main_lint
    from tasks.review import KPIS

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
    from core.clock import local_today
    from core.errors import SopDefinitionError
    from soplang.lint import lint_file

    if group and customer:
        _fail("give --group or --customer, not both")
    day = _day_option(date, "--date") or local_today(tz=get_settings().timezone)
    with _sop_errors():
        # A file with errors is refused as lint reports it, before the database side is imported.
        parsed = lint_file(file)
        if parsed.errors or parsed.spec is None:
            problems = [str(p) for p in parsed.errors]
            raise SopDefinitionError(problems[0] if problems else str(file), problems=problems)
        spec = parsed.spec
        from engine.preview import preview_step

        result = preview_step(spec, step=step, day=day, chat_id=group, customer=customer)
    _say(result.report())


@app.command("emulator")
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
    from channels.emulator import STATE_FILE, serve_forever

    if memory and state is not None:
        _fail("give --state or --memory, not both")
    path = None if memory else state or get_settings().data_dir / STATE_FILE
    kept = "in memory only" if path is None else f"in {path}"
    _say(f"WeCom emulator on http://127.0.0.1:{port}, state {kept} (Ctrl-C stops it)")
    serve_forever(port, state=path)


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

    with _sop_errors():
        text = generate(get_settings().sop_dir)
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


@app.command("prefect-setup")
def prefect_setup() -> None:
    """Create or update the Prefect objects the flows rely on at PREFECT_API_URL: the wecom-api
    call limit and the automation marking runs whose heartbeats stop as Crashed."""
    import httpx
    from prefect.settings import get_current_settings

    from orchestration.prefect_objects import ensure_prefect_objects

    api = get_current_settings().api.url
    if not api:
        _fail("PREFECT_API_URL is not set; point it at the Prefect server the workers use")
    try:
        done = ensure_prefect_objects()
    except httpx.HTTPError as error:
        _fail(f"could not set up Prefect at {api}: {error}")
    for name, outcome in done.items():
        _say(f"{name}: {outcome}")


def _show_runs(code: str, runs: list, verb: str) -> None:
    from core.clock import local

    tz = get_settings().timezone
    _say(f"{code}: {verb} {len(runs)} run(s) on deployment promotion-step")
    for run in runs:
        when = local(run.scheduled_at, tz).strftime("%Y-%m-%d %H:%M")
        _say(f"  {run.step:<10} {when} ({tz})  {run.state:<10} {run.flow_run_id}")


def _campaign_call(action: str, code: str, **kwargs: object) -> list:
    """Run one action of orchestration.campaigns, turning a domain error into a plain message."""
    from orchestration import campaigns

    with _sop_errors():
        return getattr(campaigns, f"{action}_campaign")(code, **kwargs)
    return []


@campaign_app.command("schedule")
def campaign_schedule(code: Annotated[str, typer.Argument(help="The campaign code.")]) -> None:
    """Create one scheduled run per SOP step at start + offset; the campaign becomes scheduled."""
    _show_runs(code, _campaign_call("schedule", code), "scheduled")


@campaign_app.command("reschedule")
def campaign_reschedule(
    code: Annotated[str, typer.Argument(help="The campaign code.")],
    start: Annotated[str, typer.Option(help='New start, local time: "YYYY-MM-DD HH:MM".')],
) -> None:
    """Move the campaign's start (its end moves with it) and replace its pending runs."""
    try:
        starts_local = dt.datetime.strptime(start, "%Y-%m-%d %H:%M")
    except ValueError:
        _fail(f'--start {start!r} is not a time; write it as "YYYY-MM-DD HH:MM"')
    _show_runs(code, _campaign_call("reschedule", code, starts_local=starts_local), "rescheduled")


@campaign_app.command("cancel")
def campaign_cancel(code: Annotated[str, typer.Argument(help="The campaign code.")]) -> None:
    """Cancel the campaign's pending runs and mark it cancelled."""
    _show_runs(code, _campaign_call("cancel", code), "cancelled")


DRAIN_HINT = (
    "the drain-events deployment sends it within a minute "
    "(now: prefect deployment run drain-events/drain-events)"
)


def _record(action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one recording function of tasks.events in a transaction; an EventError is a plain message."""
    from core.clock import utcnow
    from core.errors import EventError
    from models.db import session_scope

    try:
        with session_scope() as session:
            return action(*args, now=utcnow(), session=session, **kwargs)
    except EventError as error:
        _fail(str(error))


@event_app.command("add")
def event_add(
    kind: Annotated[
        str, typer.Argument(help="contact.added, favourite.price_drop, order.shipped …")
    ],
    customer: Annotated[str, typer.Option(help="The customer's external_userid.")],
    product: Annotated[
        str | None, typer.Option(help="Product SKU (favourite, favourite.price_drop).")
    ] = None,
    payload: Annotated[
        str | None, typer.Option(help="JSON object, e.g. '{\"order_id\": 123}'.")
    ] = None,
) -> None:
    """Record one pending event for a manual test of the trigger SOPs."""
    import json

    from tasks.events import record_event

    try:
        data = json.loads(payload) if payload else {}
    except json.JSONDecodeError as error:
        _fail(f"--payload is not JSON: {error}")
    if not isinstance(data, dict):
        _fail("--payload must be a JSON object such as '{\"order_id\": 123}'")
    event_id = _record(record_event, kind, customer=customer, sku=product, payload=data)
    _say(f"event {event_id} recorded: {kind} for {customer}; {DRAIN_HINT}")


@event_app.command("price-drop")
def event_price_drop(
    sku: Annotated[str, typer.Argument(help="The product SKU.")],
    price: Annotated[str, typer.Option(help="The new price in yuan, e.g. 228 or 19.9.")],
) -> None:
    """Lower a product's price and record a favourite.price_drop event per customer who favourited it."""
    from soplang.template import yuan
    from tasks.events import record_price_drop, yuan_to_fen

    try:
        new_price = yuan_to_fen(price)
    except ValueError as error:
        _fail(str(error))
    drop = _record(record_price_drop, sku, new_price)
    _say(
        f"{drop.sku} {drop.name}: {yuan(drop.old_price)} → {yuan(drop.new_price)}; "
        f"{drop.events} favourite.price_drop event(s) recorded; {DRAIN_HINT}"
    )


@app.command("report")
def report(
    starts: Annotated[
        str | None,
        typer.Option("--from", help="First day YYYY-MM-DD (default: last week's Monday)."),
    ] = None,
    ends: Annotated[
        str | None,
        typer.Option("--to", help="Last day YYYY-MM-DD, inclusive (default: --from + 6 days)."),
    ] = None,
    sop: Annotated[str | None, typer.Option(help="Review one SOP by id.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the HTML report (default: reports/).")
    ] = None,
) -> None:
    """Review (复盘) a period: attribute orders, KPIs against sop/targets.yaml, an HTML report."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from core.clock import local_today
    from review.markdown import headline_markdown
    from review.report import last_period, make_report

    settings = get_settings()
    first, last = _day_option(starts, "--from"), _day_option(ends, "--to")
    if first is None:
        first, default_last = last_period("week", local_today(tz=settings.timezone))
        last = last or default_last
    last = last or first + dt.timedelta(days=6)
    if out is not None:
        settings = settings.model_copy(update={"reports_dir": out})
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with _sop_errors(), Progress(*columns, transient=True, console=None) as bar:
        job = bar.add_task("reviewing", total=1.0)
        result = make_report(
            first,
            last,
            sop_id=sop,
            settings=settings,
            progress=lambda done, stage: bar.update(job, completed=done, description=stage),
        )
    _say(headline_markdown(result.review, result.path))


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


unknown_app = typer.Typer(
    invoke_without_command=True,
    help="Touches left `unknown` (caught mid-send, WeCom could not be asked): list and settle them.",
)
app.add_typer(unknown_app, name="unknown")


@unknown_app.callback()
def unknown_list(
    context: typer.Context,
    sop: Annotated[str | None, typer.Option(help="Only this SOP id.")] = None,
) -> None:
    """List unknown touches per SOP, step and occurrence, with why they are unknown."""
    if context.invoked_subcommand is not None:
        return
    from engine.unknown import unknown_touches
    from models.db import session_scope

    with session_scope(readonly=True) as session:
        found = unknown_touches(session=session, sop_id=sop)
    if not found:
        _say("no unknown touches")
        return
    for row in found:
        _say(f"{row.sop_id} {row.step} {row.occurrence}: {row.rows} unknown — {row.reason}")
    _say(
        "check WeCom (客户联系 → 群发记录), then: sopflow unknown resolve SOP STEP OCCURRENCE --went|--resend"
    )


@unknown_app.command("resolve")
def unknown_resolve(
    sop_id: Annotated[str, typer.Argument(help="The SOP id.")],
    step: Annotated[str, typer.Argument(help="The step (main for one-step SOPs).")],
    occurrence: Annotated[str, typer.Argument(help="The occurrence, e.g. 2026-11-24.")],
    went: Annotated[bool, typer.Option("--went", help="WeCom has the message: mark sent.")] = False,
    resend: Annotated[
        bool, typer.Option("--resend", help="WeCom has no such message: the next run sends it.")
    ] = False,
) -> None:
    """Settle one occurrence's unknown touches after checking WeCom: --went or --resend."""
    if went == resend:
        _fail("say what WeCom showed: exactly one of --went or --resend", code=2)
    from engine.unknown import settle_unknown
    from models.db import session_scope

    with session_scope() as session:
        changed = settle_unknown(
            sop_id, step, occurrence, "went" if went else "resend", session=session
        )
    if not changed:
        _fail(f"no unknown touches for {sop_id} {step} {occurrence} (see: sopflow unknown)")
    verdict = "marked sent" if went else "marked failed; run the occurrence again to send them"
    _say(f"{sop_id} {step} {occurrence}: {changed} touch(es) {verdict}")


if __name__ == "__main__":
    app()
