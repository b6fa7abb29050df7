"""The nightly classify-stages flow derives tiers and tags first, classifies, then pushes tags;
a broken tags.yaml still lets the stages be classified, then fails the run naming the line."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from channels.emulator.directory_world import DirectoryWorld, ext_id
from channels.emulator.tags import tag_book
from channels.wecom import WeComClient
from core.clock import at_local
from core.errors import SopDefinitionError
from core.settings import get_settings, reset_settings
from engine.sync import sync_directory
from flows.lifecycle import classify_stages
from models.db import session_scope
from models.people import Customer, StageTransition
from tests.factories import add_order, make_world

DAY = dt.date(2026, 11, 24)
NOW = at_local(DAY, 0, 5)


def _synced_world(emulator) -> dict[int, int]:
    emulator.seed_directory(DirectoryWorld.generate(staff=2, contacts=6, groups_per_staff=0))
    make_world(DAY)
    with WeComClient.from_settings(get_settings()) as client:
        sync_directory(client, full=True, sleep=lambda _: None)
    with session_scope() as session:
        rows = session.exec(select(Customer.external_userid, Customer.id)).all()
    return {int(ext[5:]): cid for ext, cid in rows}


def test_nightly_flow_tags_a_mother_and_pushes_it(emulator) -> None:
    """Contact 1's two 母婴 orders make them 宝妈 with the shipped rules, in WeCom too."""
    ids = _synced_world(emulator)
    for days in (10, 20):
        add_order(ids[1], at_local(DAY - dt.timedelta(days=days), 15), [("B001", 1, 5990)])

    classify_stages(now=NOW)

    assert [(m["external_userid"], m["add_tag"]) for m in tag_book(emulator).marks] == [
        (ext_id(1), ["ettag02"])
    ]
    with session_scope() as session:
        assert session.get(Customer, ids[1]).stage == "growing"


def test_broken_tags_file_fails_the_run_after_the_stages(emulator, tmp_path, monkeypatch) -> None:
    _synced_world(emulator)
    (tmp_path / "tags.yaml").write_text("宝妈:\n  min_orders: 0\n", encoding="utf-8")
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(tmp_path))
    reset_settings()

    with pytest.raises(SopDefinitionError, match="tags.yaml:2"):
        classify_stages(now=NOW)

    with session_scope() as session:
        assert session.exec(select(StageTransition)).all() != []
    assert tag_book(emulator).marks == []
