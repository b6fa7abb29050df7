# ruff: noqa: F401, F811  (fixtures shared with the tests of the paths, used by name)
"""Issue 16's send paths with WeCom unreachable, losing answers or answering oddly, then back:
nothing sent twice, no touch lost, each outcome recorded in words ops read."""

from __future__ import annotations

import datetime as dt
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels.emulator import WeComEmulator
from channels.emulator.moments import book
from channels.wecom import WeComClient
from core.errors import ChannelUnreached
from core.settings import get_settings, reset_settings
from engine.dispatch import send_grouped
from engine.moments import send_moments
from engine.welcome import dispatch_events
from soplang.spec import SopSpec
from tests.engine.test_attachment_outcomes import CARD, COUPON, channel, codes_for, touches
from tests.engine.test_moments import staff
from tests.factories import deliveries
from tests.flows.test_attachments_flow import sop_with_card, world

DAY = dt.date(2026, 11, 25)
ADD_MOMENT = "/cgi-bin/externalcontact/add_moment_task"
UPLOAD = "/cgi-bin/media/upload"
PNG = b"\x89PNG\r\n\x1a\n" + b"p" * 300


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Settings read again after each test, once its environment is restored."""
    yield
    reset_settings()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECOM_API_BASE", f"http://127.0.0.1:{closed_port()}")
    reset_settings()


def reachable(monkeypatch: pytest.MonkeyPatch, emulator: WeComEmulator) -> None:
    monkeypatch.setenv("WECOM_API_BASE", emulator.url)
    reset_settings()


@pytest.fixture
def media_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An SOP folder with one product photo; short WeCom timeouts."""
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "eggs.png").write_bytes(PNG)
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(tmp_path))
    monkeypatch.setenv("WECOM_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("WECOM_READ_TIMEOUT", "1.5")
    reset_settings()
    return tmp_path


def moment_spec() -> SopSpec:
    return SopSpec.model_validate(
        {
            "id": "moments-photo",
            "title": "周一新品",
            "kind": "community",
            "channel": "moments",
            "category": "fresh",
            "schedule": {"cron": "0 9 * * 1"},
            "audience": {"staff": {"region": ["北京"]}},
            "steps": [{"name": "main", "attachments": [{"image": "media/eggs.png"}]}],
            "sections": {"main": {"text": "新鲜鸡蛋到店", "first_line": 3, "heading_line": 2}},
        }
    )


def run_moments() -> dict[str, object]:
    with WeComClient.from_settings(get_settings()) as client:
        return send_moments(moment_spec(), "main", DAY, client, sleep=lambda _: None)


def statuses() -> Counter[str]:
    return Counter(r.status for r in deliveries())


def assert_each_staff_member_has_one_moment(emulator: WeComEmulator) -> None:
    senders = Counter(u for m in book(emulator).moments.values() for u in m["senders"])
    assert senders == Counter({"bj.a": 1, "bj.b": 1, "bj.boss": 1})
    assert statuses() == Counter({"sent": 3})


def test_moments_with_wecom_unreachable_fail_with_the_reason_and_are_sent_once_later(
    staff, emulator, media_folder, monkeypatch
) -> None:
    unreachable(monkeypatch)
    summary = run_moments()

    assert summary["this_run"] == {"failed": 3}
    assert all("could not connect" in (r.reason or "") for r in deliveries())
    reachable(monkeypatch, emulator)
    run_moments()
    assert_each_staff_member_has_one_moment(emulator)


def test_a_moment_whose_photo_upload_lost_its_answer_is_not_lost(
    staff, emulator, media_folder
) -> None:
    """The upload went unanswered, so add_moment_task was never called: the rows failed (sent
    again next run), not `sending` (which a later run could only settle as `unknown`)."""
    emulator.configure(lose_answer_next=1)  # the first API call is media/upload
    run_moments()

    assert emulator.calls[ADD_MOMENT] == 0
    assert statuses() == Counter({"failed": 3})
    run_moments()
    assert_each_staff_member_has_one_moment(emulator)


def test_a_lost_add_moment_task_answer_is_found_again_and_never_doubled(
    staff, emulator, media_folder
) -> None:
    run = {"calls": 0}
    emulator.configure(lose_answer_next=0)
    with WeComClient.from_settings(get_settings()) as client:
        from channels.media import media_files

        media_files(client).media_id("media/eggs.png", "image")  # the upload answered
        emulator.configure(lose_answer_next=1)  # now add_moment_task's answer is lost
        send_moments(moment_spec(), "main", DAY, client, sleep=lambda _: None)
        run["calls"] = emulator.calls[ADD_MOMENT]
    assert statuses() == Counter({"sending": 3})
    run_moments()
    assert emulator.calls[ADD_MOMENT] == run["calls"] == 1
    assert_each_staff_member_has_one_moment(emulator)


# -- group messages with a deal photo and a mini-program card (the community flow) -------------

GROUP_DAY = dt.date(2026, 11, 24)


@pytest.fixture
def group_run(world, sop_with_card, monkeypatch):
    """morning-price with photo and card; WeCom calls that give up fast, quick retries."""
    from tasks import dispatch

    monkeypatch.setenv("WECOM_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("WECOM_READ_TIMEOUT", "1.5")
    reset_settings()
    monkeypatch.setattr(dispatch.dispatch_senders, "retry_delay_seconds", [0.2, 0.2, 0.2])

    def run():
        from core.clock import at_local
        from flows.community import community_sop

        now = at_local(GROUP_DAY, 8, 30)
        return community_sop(sop_id="morning-price", day=GROUP_DAY, now=now, return_state=True)

    return run


def assert_each_group_got_one_message_with_its_attachments(emulator: WeComEmulator) -> None:
    rows = [r for r in deliveries() if r.status != "skipped"]
    assert rows and {r.status for r in rows} == {"sent"}
    received = Counter(t for m in emulator.messages for t in m["targets"])
    assert received == Counter({r.target_id: 1 for r in rows})
    assert all(m["attachments"] for m in emulator.messages)


def test_group_messages_with_attachments_wecom_unreachable_then_back(
    group_run, emulator, monkeypatch
) -> None:
    unreachable(monkeypatch)
    state = group_run()

    assert state.is_failed() and "due but not sent" in state.message
    failed = [r for r in deliveries() if r.status != "skipped"]
    assert failed and {r.status for r in failed} == {"failed"}
    assert all("could not connect" in (r.reason or "") for r in failed)
    reachable(monkeypatch, emulator)
    assert group_run().is_completed()
    assert_each_group_got_one_message_with_its_attachments(emulator)


@pytest.mark.parametrize(
    "fault",
    [
        {"lose_answer_next": 1},  # the photo's upload is made, its answer lost
        {"http_500_next": 1},
        {"fail_next": [{"errcode": 40007, "path": "add_msg_template"}]},  # media expired
        {"delay_seconds": 2.0, "delay_paths": ["media/upload"]},  # upload read timeout
    ],
    ids=["upload-answer-lost", "upload-500", "media-expired", "upload-timeout"],
)
def test_group_messages_survive_a_faulty_upload_and_are_sent_once(
    group_run, emulator, fault
) -> None:
    emulator.configure(**fault)
    first = group_run()

    emulator.configure(
        fail_next=[], http_500_next=0, lose_answer_next=0, delay_seconds=0, delay_paths=[]
    )
    if not first.is_completed():
        assert group_run().is_completed()
    assert_each_group_got_one_message_with_its_attachments(emulator)


# -- 1:1: welcome messages and mass messages with an attachment --------------------------------


def test_a_welcome_whose_photo_upload_lost_its_answer_failed_not_unknown(
    emulator, touches, channel
) -> None:
    """The upload got no answer, so send_welcome_msg was never called: the touch says `failed:
    not sent`, not `unknown` (which is never sent again)."""
    from channels.emulator.welcome import book as welcome_book

    welcome = touches[0]._replace(attachments=(COUPON,))
    emulator.configure(lose_answer_next=1)

    with pytest.raises(ChannelUnreached):
        dispatch_events(channel, [welcome], codes_for(emulator, [welcome]))

    (row,) = [r for r in deliveries() if r.id == welcome.delivery_id]
    assert row.status == "failed" and "not sent" in (row.reason or "")
    assert welcome_book(emulator).welcomes == []
    dispatch_events(channel, [welcome], codes_for(emulator, [welcome]))
    assert len(welcome_book(emulator).welcomes) == 1


def test_a_mass_message_whose_upload_lost_its_answer_is_failed_and_sent_once_later(
    emulator, touches, channel
) -> None:
    batch = [t._replace(attachments=(COUPON, CARD)) for t in touches]
    emulator.configure(lose_answer_next=1)

    with pytest.raises(ChannelUnreached):
        send_grouped(channel, "single", batch)

    assert {r.status for r in deliveries() if r.id in {t.delivery_id for t in batch}} == {"failed"}
    assert emulator.messages == []
    send_grouped(channel, "single", batch)
    received = Counter(t for m in emulator.messages for t in m["targets"])
    assert received == Counter({t.target_id: 1 for t in batch})


# -- the group welcome (`sopflow group-welcome`) ----------------------------------------------


@pytest.fixture
def welcome_folder(emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from tests.engine.test_group_welcome import APPID, CARD

    sop = tmp_path / "sop"
    (sop / "media").mkdir(parents=True)
    (sop / "media" / "cover.png").write_bytes(PNG)
    (sop / "group-welcome.yaml").write_text(CARD, encoding="utf-8")
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(sop))
    monkeypatch.setenv("WECOM_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("WECOM_READ_TIMEOUT", "1.5")
    reset_settings()
    emulator.configure(linked_appids=[APPID])
    return sop


def group_welcome_command():
    from typer.testing import CliRunner

    from sopflow.cli import app

    return CliRunner().invoke(app, ["group-welcome"])


def test_the_group_welcome_with_wecom_unreachable_says_so_and_is_added_once_later(
    emulator, welcome_folder, monkeypatch
) -> None:
    from channels.emulator.group_welcome import templates

    unreachable(monkeypatch)
    down = group_welcome_command()

    assert down.exit_code != 0 and "Traceback" not in down.output
    assert "WeCom not reached" in down.output and "fix the file" not in down.output
    reachable(monkeypatch, emulator)
    up, again = group_welcome_command(), group_welcome_command()
    assert "added" in up.output and "unchanged" in again.output
    assert len(templates(emulator)) == 1


def test_a_group_welcome_add_without_an_answer_warns_it_may_exist_in_wecom(
    emulator, welcome_folder
) -> None:
    emulator.configure(delay_seconds=2.0, delay_paths=["group_welcome_template/add"])
    lost = group_welcome_command()

    assert lost.exit_code != 0 and "Traceback" not in lost.output
    assert "may have" in lost.output and "admin console" in lost.output, lost.output


def test_a_lost_moment_task_looked_for_while_wecom_is_down_stays_sending_without_a_traceback(
    staff, emulator, media_folder, monkeypatch
) -> None:
    with WeComClient.from_settings(get_settings()) as client:
        from channels.media import media_files

        media_files(client).media_id("media/eggs.png", "image")
        emulator.configure(lose_answer_next=1)  # add_moment_task's answer is lost
        send_moments(moment_spec(), "main", DAY, client, sleep=lambda _: None)
    unreachable(monkeypatch)

    summary = run_moments()

    assert summary["this_run"] == {"sending": 3} and statuses() == Counter({"sending": 3})
    reachable(monkeypatch, emulator)
    run_moments()
    assert emulator.calls[ADD_MOMENT] == 1
    assert_each_staff_member_has_one_moment(emulator)


def test_a_group_welcome_whose_picture_upload_lost_its_answer_says_run_it_again(
    emulator, welcome_folder
) -> None:
    """The upload, not the add, went unanswered: no template can exist, so no warning to look."""
    from channels.emulator.group_welcome import templates

    emulator.configure(lose_answer_next=1)  # media/upload, the first API call
    lost = group_welcome_command()

    assert lost.exit_code != 0 and "WeCom not reached" in lost.output, lost.output
    assert "may have" not in lost.output and templates(emulator) == {}
    assert "added" in group_welcome_command().output and len(templates(emulator)) == 1
