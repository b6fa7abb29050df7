"""`sopflow unknown`: an operator lists touches nobody could settle and decides what became of them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from typer.testing import CliRunner

from core.clock import at_local
from engine.unknown import RESEND, WENT
from flows.community import community_sop
from models.db import session_scope
from models.delivery import Delivery
from sopflow.cli import app
from tests.factories import deliveries, make_world

DAY = dt.date(2026, 11, 24)
MORNING = at_local(DAY, 8, 30)


def make_unknown(ids: list[int]) -> None:
    """As reconciliation leaves rows WeCom could not be asked about: unknown, no msgid."""
    with session_scope() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))  # type: ignore[union-attr]
            .values(status="unknown", msgid=None, reason="unknown: caught mid-send; not resent")
        )


def test_unknown_touches_are_listed_and_settled_as_the_operator_decides(database_url: str) -> None:
    make_world(DAY)
    community_sop(sop_id="morning-price", day=DAY, now=MORNING)
    went, resend, _ = (r for r in deliveries() if r.status == "sent")
    make_unknown([went.id, resend.id])
    runner = CliRunner()

    listing = runner.invoke(app, ["unknown"])
    assert listing.exit_code == 0
    assert "morning-price main 2026-11-24: 2 unknown — unknown: caught mid-send" in listing.output

    wrong = runner.invoke(app, ["unknown", "resolve", "morning-price", "main", "2026-11-24"])
    assert wrong.exit_code == 2 and "--went or --resend" in wrong.output
    make_unknown([resend.id])  # settle one row at a time: first the one that went out
    with session_scope() as session:
        session.execute(
            update(Delivery).where(Delivery.id == resend.id).values(status="sent")  # type: ignore[arg-type]
        )
    done = runner.invoke(
        app, ["unknown", "resolve", "morning-price", "main", "2026-11-24", "--went"]
    )
    assert done.exit_code == 0 and "1 touch(es) marked sent" in done.output
    make_unknown([resend.id])
    again = runner.invoke(
        app, ["unknown", "resolve", "morning-price", "main", "2026-11-24", "--resend"]
    )
    assert again.exit_code == 0 and "run the occurrence again" in again.output

    statuses = {r.id: (r.status, r.reason) for r in deliveries()}
    assert statuses[went.id] == ("sent", WENT)
    assert statuses[resend.id] == ("failed", RESEND)
    community_sop(sop_id="morning-price", day=DAY, now=MORNING)
    assert next(r for r in deliveries() if r.id == resend.id).status == "sent"
    assert runner.invoke(app, ["unknown"]).output.strip() == "no unknown touches"
