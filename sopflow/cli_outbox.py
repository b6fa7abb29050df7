"""`sopflow outbox`: what the outbox channel sent, per staff member and group/customer, as text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import Annotated, cast

import typer

from sopflow.cli_common import fail, say

SHOWN_TARGETS = 5  # recipients named per message; the rest are counted
CHAT_TYPES = {"group": ("客户群群发", "group chat(s)"), "single": ("客户群发", "customer(s)")}


def outbox(
    staff: Annotated[
        str | None, typer.Option(help="Only this staff member's messages (their WeCom userid).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many messages, newest first.")] = 20,
) -> None:
    """Print what the outbox channel sent (SOPFLOW_CHANNEL=outbox), per staff member, newest first."""
    from channels.outbox import OutboxReadError, newest_first
    from core.settings import get_settings

    settings = get_settings()
    directory = settings.outbox_dir
    if settings.channel != "outbox":
        say(f"note: SOPFLOW_CHANNEL is {settings.channel}; the outbox holds only earlier sends")
    try:
        records = list(islice(newest_first(directory, staff=staff), limit))
        if not records:
            fail(_nothing(directory, staff, newest_first(directory)))
    except OutboxReadError as error:
        fail(str(error))
    names = _names(_ids(records))
    say(
        f"outbox {directory}: the newest {len(records)} message(s)"
        f"{f' of {staff}' if staff else ''}, newest first; times in {settings.timezone}"
    )
    by_staff: dict[str, list[dict[str, object]]] = {}
    for record in records:
        by_staff.setdefault(str(record["sender"]), []).append(record)
    for sender, sent in by_staff.items():
        say("")
        say(f"员工 staff {_named(sender, names)}: {len(sent)} message(s)")
        for record in sent:
            for line in _message(record, names, settings.timezone):
                say(line)


def _message(record: dict[str, object], names: dict[str, str], timezone: str) -> list[str]:
    """One message: when, the kind, to whom, then its text indented, line by line."""
    from core.clock import local

    when = local(dt.datetime.fromisoformat(str(record["time"])), timezone)
    kind, unit = CHAT_TYPES.get(str(record["chat_type"]), (str(record["chat_type"]), "target(s)"))
    targets = _targets(record)
    shown = ", ".join(_named(target, names) for target in targets[:SHOWN_TARGETS])
    more = f" … and {len(targets) - SHOWN_TARGETS} more" if len(targets) > SHOWN_TARGETS else ""
    text = [f"    │ {line}" for line in str(record["content"]).splitlines() or [""]]
    return [
        f"  {when:%Y-%m-%d %H:%M:%S}  {kind} {record['chat_type']} → "
        f"{len(targets)} {unit}: {shown}{more}",
        *text,
    ]


def _nothing(directory: Path, staff: str | None, everyone: Iterable[dict[str, object]]) -> str:
    """Why nothing is listed: an empty outbox, or a staff member without messages."""
    if staff is None:
        return (
            f"the outbox at {directory} is empty: nothing has been sent with "
            "SOPFLOW_CHANNEL=outbox (check SOPFLOW_DATA_DIR)"
        )
    senders = sorted({str(record["sender"]) for record in everyone})
    some = ", ".join(senders[:10]) + (" …" if len(senders) > 10 else "")
    found = f"staff members with messages: {some}" if senders else "the outbox is empty"
    return f"no messages from staff {staff!r} in {directory} ({found})"


def _ids(records: list[dict[str, object]]) -> set[str]:
    """The staff members and the first recipients the listing names."""
    ids = {str(record["sender"]) for record in records}
    for record in records:
        ids.update(_targets(record)[:SHOWN_TARGETS])
    return ids


def _targets(record: dict[str, object]) -> list[str]:
    return [str(target) for target in cast(list[object], record["targets"])]


def _named(identifier: str, names: dict[str, str]) -> str:
    name = names.get(identifier)
    return f"{name} ({identifier})" if name else identifier


def _names(ids: set[str]) -> dict[str, str]:
    """Names of staff members, groups and customers from the database; none when it has none."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import col, select

    from core.settings import get_settings
    from models.db import session_scope
    from models.people import Customer, CustomerGroup, Staff

    url = make_url(get_settings().database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        return {}  # no database here yet: never create one just to look up names
    names: dict[str, str] = {}
    wanted = sorted(ids)
    try:
        with session_scope(readonly=True) as session:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                for key, name in (
                    (Staff.userid, Staff.name),
                    (CustomerGroup.chat_id, CustomerGroup.name),
                    (Customer.external_userid, Customer.name),
                ):
                    rows = session.exec(select(key, name).where(col(key).in_(chunk)))
                    names.update(dict(rows.all()))
    except SQLAlchemyError:
        return {}  # a database without the schema: ids alone
    return names
