"""The group-robot channel against the emulator's webhook: posts, the 20/min limiter, errcodes, key secrecy."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from channels.emulator import WEBHOOK, WeComEmulator
from channels.limiter import KeyedRateLimiter
from channels.robot import RobotChannel, parse_robot_keys
from core.errors import ChannelAuthError, ChannelRateLimited, ChannelRejected, ChannelTransient
from core.settings import Settings
from tests.channels.conftest import FakeClock

KEY = "robot-key-0b5e-do-not-leak"
OTHER_KEY = "robot-key-77aa-do-not-leak"


@pytest.fixture
def robot(emulator: WeComEmulator, clock: FakeClock) -> Iterator[RobotChannel]:
    """A robot channel whose limiter sleeps on the emulator's fake clock."""
    emulator.configure(robot_keys=[KEY, OTHER_KEY])
    limiter = KeyedRateLimiter(20, clock=clock, sleep=clock.sleep)
    keys = {"ops-bj": KEY, "ops-sh": OTHER_KEY}
    with RobotChannel(emulator.url, keys, timeout=(1.0, 2.0), limiter=limiter) as channel:
        yield channel


def full_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


def test_post_text_and_markdown_reach_the_robot_named_by_key_name(robot, emulator):
    robot.post_text("ops-bj", "今日会员日已开始", mentioned_list=["@all"])
    robot.post_markdown("ops-sh", '**库存** <font color="warning">低</font>')

    assert emulator.robot_posts[KEY] == [
        {
            "msgtype": "text",
            "text": {"content": "今日会员日已开始", "mentioned_list": ["@all"]},
            "time": emulator.clock(),
        }
    ]
    assert emulator.robot_posts[OTHER_KEY][0]["markdown"]["content"].startswith("**库存**")


def test_limiter_waits_so_25_posts_never_exceed_20_a_minute(robot, emulator, clock):
    start = clock.now
    for i in range(25):
        robot.post_text("ops-bj", f"message {i}")

    times = [post["time"] for post in emulator.robot_posts[KEY]]
    assert len(times) == 25
    assert times[:20] == [start] * 20 and times[20:] == [start + 60] * 5
    assert all(later - earlier >= 60 for earlier, later in zip(times, times[20:], strict=False))


def test_limits_are_per_robot(robot, emulator, clock):
    start = clock.now
    for _ in range(20):
        robot.post_text("ops-bj", "a")
    robot.post_text("ops-sh", "b")

    assert clock.now == start and len(emulator.robot_posts[OTHER_KEY]) == 1


def test_emulator_answers_45009_past_its_robot_rate_and_recovers_after_a_minute(emulator, clock):
    emulator.configure(robot_keys=[KEY], robot_per_minute=2)
    unlimited = KeyedRateLimiter(1000, clock=clock, sleep=clock.sleep)
    with RobotChannel(emulator.url, {"ops": KEY}, limiter=unlimited) as robot:
        robot.post_text("ops", "1")
        robot.post_text("ops", "2")
        with pytest.raises(ChannelRateLimited) as caught:
            robot.post_text("ops", "3")
        clock.advance(60)
        robot.post_text("ops", "4")

    assert caught.value.errcode == 45009
    assert [p["text"]["content"] for p in emulator.robot_posts[KEY]] == ["1", "2", "4"]


@pytest.mark.parametrize(
    ("setup", "errcode", "cls"),
    [
        ({"robot_keys": ["another"]}, 93000, ChannelAuthError),
        ({"robot_disabled_keys": [KEY]}, 93004, ChannelRejected),
        ({"fail_next": [{"errcode": 93008, "path": "webhook/send"}]}, 93008, ChannelRejected),
    ],
    ids=["bad-key", "robot-disabled", "robot-not-in-group"],
)
def test_robot_errcodes_raise_their_mapped_class(robot, emulator, setup, errcode, cls):
    emulator.configure(**setup)

    with pytest.raises(cls) as caught:
        robot.post_text("ops-bj", "hello")

    assert caught.value.errcode == errcode
    assert KEY not in full_text(caught.value)


def test_plain_fail_next_does_not_hit_the_webhook(robot, emulator):
    emulator.configure(fail_next=[-1])

    robot.post_text("ops-bj", "hello")

    assert emulator.state()["config"]["fail_next"] == [-1]


@pytest.mark.parametrize(
    ("post", "errcode"),
    [
        (lambda r: r.post_text("ops-bj", "a" * 2049), 40058),
        (lambda r: r.post_markdown("ops-bj", "好" * 1366), 40058),
        (lambda r: r.post_text("ops-bj", "  "), 44004),
        (lambda r: r.post_text("nobody", "hello"), None),
    ],
    ids=["text-over-2048-bytes", "markdown-over-4096-bytes", "empty", "unknown-robot"],
)
def test_bad_posts_are_refused_before_any_http_call(robot, emulator, post, errcode):
    with pytest.raises(ChannelRejected) as caught:
        post(robot)

    assert caught.value.errcode == errcode
    assert emulator.state()["calls"] == {}


def test_content_at_the_byte_limits_is_posted(robot, emulator):
    robot.post_text("ops-bj", "a" * 2048)
    robot.post_markdown("ops-bj", "好" * 1365)

    assert len(emulator.robot_posts[KEY]) == 2


def test_robot_keys_never_appear_in_errors_logs_or_reprs(emulator, caplog):
    caplog.set_level(logging.DEBUG)
    emulator.configure(robot_keys=[KEY])
    settings = Settings(
        WECOM_API_BASE=emulator.url, SOPFLOW_ROBOT_KEYS=f'{{"ops-bj": "{KEY}", "x": "{OTHER_KEY}"}}'
    )
    robot = RobotChannel.from_settings(settings)
    robot.post_text("ops-bj", "hello")
    errors = []
    with pytest.raises(ChannelAuthError) as bad_key:
        robot.post_text("x", "hello")  # the emulator does not know OTHER_KEY: 93000
    errors.append(bad_key.value)
    emulator.stop()
    with pytest.raises(ChannelTransient) as refused:  # the URL with ?key= is in urllib3's error
        robot.post_text("ops-bj", "hello")
    errors.append(refused.value)
    robot.close()

    assert "/cgi-bin/webhook/send" in str(refused.value)
    for secret in (KEY, OTHER_KEY):
        assert all(secret not in full_text(exc) for exc in errors)
        assert secret not in caplog.text
        assert secret not in repr(robot) + repr(settings) + str(settings.model_dump())
    assert robot.robots == ["ops-bj", "x"]


def test_robot_keys_parse_from_a_json_secret_and_bad_json_is_not_echoed():
    keys = parse_robot_keys(SecretStr(f'{{"ops-bj": "{KEY}"}}'))

    assert {name: key.get_secret_value() for name, key in keys.items()} == {"ops-bj": KEY}
    assert parse_robot_keys(SecretStr("")) == {}
    for bad in (f'{{"ops-bj": "{KEY}"', f'["{KEY}"]', f'{{"ops-bj": ["{KEY}"]}}'):
        with pytest.raises(ValueError) as caught:
            parse_robot_keys(SecretStr(bad))
        assert KEY not in full_text(caught.value)


def test_webhook_calls_are_counted_without_a_token(robot, emulator):
    robot.post_text("ops-bj", "hello")

    assert emulator.state()["calls"] == {WEBHOOK: 1}
