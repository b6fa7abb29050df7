"""`sopflow unknown [resolve]`: touches left `unknown` mid-send, listed and settled by an operator."""

from __future__ import annotations

from typing import Annotated

import typer

from sopflow.cli_common import fail, say

unknown_app = typer.Typer(
    invoke_without_command=True,
    help="Touches left `unknown` (caught mid-send, WeCom could not be asked): list and settle them.",
)


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
        say("no unknown touches")
        return
    for row in found:
        say(f"{row.sop_id} {row.step} {row.occurrence}: {row.rows} unknown — {row.reason}")
    say(
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
        fail("say what WeCom showed: exactly one of --went or --resend", code=2)
    from engine.unknown import settle_unknown
    from models.db import session_scope

    with session_scope() as session:
        changed = settle_unknown(
            sop_id, step, occurrence, "went" if went else "resend", session=session
        )
    if not changed:
        fail(f"no unknown touches for {sop_id} {step} {occurrence} (see: sopflow unknown)")
    verdict = "marked sent" if went else "marked failed; run the occurrence again to send them"
    say(f"{sop_id} {step} {occurrence}: {changed} touch(es) {verdict}")
