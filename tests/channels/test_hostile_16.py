# ruff: noqa: F401, F811  (the `staff` fixture, shared with the moments tests, used by name)
"""Issue 16 as a hostile user and an odd WeCom would have it: answers with missing or odd
fields, a coupon system that answers nonsense or slowly, attachment files and group-welcome
files that are not what they claim. Each ends in an error naming what and what to do."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from channels.media import MediaFiles, MemoryMediaStore
from channels.wecom import WeComClient
from core.errors import ChannelError, ChannelTransient
from core.settings import reset_settings
from tests.engine.test_moments import staff

PNG = b"\x89PNG\r\n\x1a\n" + b"p" * 300


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Settings read again after each test, once its environment is restored."""
    yield
    reset_settings()


class OddWeCom:
    """A WeCom over loopback that answers each path with what a test sets (JSON or raw bytes)."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self.delay_per_byte = 0.0
        self.status: tuple[int, str | None] | None = None  # (HTTP status, Location) of every answer
        self.paths: list[str] = []
        odd = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                if path.endswith("/gettoken"):
                    body = json.dumps({"errcode": 0, "access_token": "t", "expires_in": 7200})
                    answer: Any = body.encode()
                else:
                    found = odd.answers.get(path.rsplit("/", 1)[-1], {"errcode": 0})
                    answer = found if isinstance(found, bytes) else json.dumps(found).encode()
                odd.paths.append(path)
                status, location = odd.status or (200, None)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                if odd.delay_per_byte:
                    for byte in answer:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(odd.delay_per_byte)
                else:
                    self.wfile.write(answer)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def odd() -> Iterator[OddWeCom]:
    server = OddWeCom()
    yield server
    server.close()


@pytest.fixture
def odd_client(odd: OddWeCom) -> Iterator[WeComClient]:
    with WeComClient(odd.url, "corp", "secret", timeout=(1.0, 2.0)) as client:
        yield client


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "eggs.png").write_bytes(PNG)
    return tmp_path


# -- WeCom answers ok, but without what the call is for ------------------------------------


def test_an_ok_add_moment_task_without_a_jobid_is_treated_as_no_answer(odd, odd_client) -> None:
    from channels.wecom_moments import add_moment_task

    odd.answers["add_moment_task"] = {"errcode": 0, "errmsg": "ok"}
    with pytest.raises(ChannelTransient, match=r"add_moment_task: .*without a usable `jobid`"):
        add_moment_task(odd_client, "周一新品", ["a"])


@pytest.mark.parametrize(
    ("answer", "field"),
    [({"errcode": 0}, "media_id"), ({"errcode": 0, "media_id": {"x": 1}}, "media_id")],
)
def test_an_upload_answer_without_a_media_id_is_an_error_not_a_traceback(
    odd, odd_client, folder, answer, field
) -> None:
    odd.answers["upload"] = answer
    media = MediaFiles(odd_client, MemoryMediaStore(), root=folder)
    with pytest.raises(ChannelTransient, match=f"`{field}`"):
        media.media_id("media/eggs.png", "image")


def test_an_upload_with_an_odd_created_at_counts_from_now(odd, odd_client, folder) -> None:
    odd.answers["upload"] = {"errcode": 0, "media_id": "m1", "created_at": "yesterday"}
    media = MediaFiles(odd_client, MemoryMediaStore(), root=folder, now=lambda: 1000.0)
    assert media.media_id("media/eggs.png", "image") == "m1"


def test_an_ok_template_add_without_a_template_id_is_treated_as_no_answer(odd, odd_client) -> None:
    from channels.wecom_group_welcome import add_template

    odd.answers["add"] = {"errcode": 0, "template_id": ""}
    with pytest.raises(ChannelTransient, match="`template_id`"):
        add_template(odd_client, "欢迎", None)


# -- moments results with missing or odd fields --------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        {"errcode": 0, "status": "done"},
        {"errcode": 0, "status": 2, "result": []},
        {"errcode": 0, "status": 2, "result": {"invalid_sender_list": ["a"]}},
        {"errcode": 0, "status": 2, "result": {"moment_id": ""}},  # done, but which moment?
        {"errcode": 0, "status": 7},
        {"errcode": 0, "status": 2, "result": {"moment_id": "m", "errcode": "x"}},
        {"errcode": 0, "status": 2, "result": {"moment_id": "m", "invalid_sender_list": {"user_list": "bj.a"}}},
    ],
)  # fmt: skip
def test_an_odd_moment_task_result_is_a_transient_error_naming_the_job(
    odd, odd_client, answer
) -> None:
    from channels.wecom_moments import get_moment_task_result

    odd.answers["get_moment_task_result"] = answer
    with pytest.raises(ChannelTransient, match="get_moment_task_result job-1: an answer sopflow"):
        get_moment_task_result(odd_client, "job-1")


def test_a_done_moment_task_result_with_refused_senders_is_read(odd, odd_client) -> None:
    from channels.wecom_moments import get_moment_task_result

    odd.answers["get_moment_task_result"] = {
        "errcode": 0, "status": 2,
        "result": {"moment_id": "m", "invalid_sender_list": {"user_list": ["bj.a"]}},
    }  # fmt: skip
    result = get_moment_task_result(odd_client, "job-1")
    assert (result.moment_id, result.invalid_senders) == ("m", ("bj.a",))


@pytest.mark.parametrize(
    "answer",
    [
        {"errcode": 0, "moment_list": "nope"},
        {"errcode": 0, "moment_list": [1, 2]},
        {"errcode": 0, "moment_list": {"moment_id": "m"}},
    ],
)
def test_an_odd_moment_list_is_a_transient_error(odd, odd_client, answer) -> None:
    import datetime as dt

    from channels.wecom_moments import iter_moment_list

    odd.answers["get_moment_list"] = answer
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(ChannelTransient, match="`moment_list` is not a list of objects"):
        list(iter_moment_list(odd_client, now - dt.timedelta(hours=1), now))


def test_moment_list_entries_without_text_or_id_match_nothing(
    odd, odd_client, database_url
) -> None:
    """Rows whose task answer was lost are looked for among the moments; odd ones match none."""
    import datetime as dt

    from engine.moments import _find_lost

    odd.answers["get_moment_list"] = {
        "errcode": 0,
        "moment_list": [
            {"text": "周一新品", "create_type": 0, "moment_id": "m1"},  # text not an object
            {"text": {"content": "周一新品"}, "create_type": 0},  # no moment_id
        ],
    }
    odd.answers["get_moment_task"] = {"errcode": 0, "task_list": [{"userid": "bj.a"}]}
    now = dt.datetime.now(dt.UTC)

    moved = _find_lost([(1, "bj.a", now, "周一新品")], odd_client)

    assert "sent" not in moved  # never settled as sent by a moment it cannot name


# -- the chain's coupon endpoint answering nonsense, hugely or slowly -----------------------


def coupon_request():
    from channels.coupons import CouponRequest

    return CouponRequest("WELCOME10", "wm-1", None, "sop:step:1:wm-1", "new-first-order", "main")


def issue_at(odd: OddWeCom, answer: Any, timeout: tuple[float, float] = (1.0, 1.0)):
    from channels.coupons import CouponClient

    odd.answers["issue"] = answer
    with CouponClient(odd.url + "/coupons/issue", "s3cret", timeout=timeout) as client:
        return client.issue(coupon_request())


GOOD = {"coupon_id": "c1", "code": "ABC123", "expires_at": "2026-12-31T23:59:59+08:00"}


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"<html>ok</html>", "lacks coupon_id, code or expires_at"),
        (b"\xff\xfe\x00garbage", "lacks coupon_id, code or expires_at"),
        (b"[" * 50_000 + b"]" * 50_000, "over 64 KB"),
        (b"[" * 20_000 + b"]" * 20_000, "lacks coupon_id"),  # nested past Python's limit
        (b'{"pad": "' + b"x" * 300_000 + b'"}', "over 64 KB"),
        ({**GOOD, "expires_at": 1767196799}, "lacks coupon_id, code or expires_at"),
        ({**GOOD, "expires_at": "2026-12-31T23:59:59"}, "naive expires_at"),
        ({**GOOD, "code": ""}, "empty code"),
        ({**GOOD, "code": "X" * 65}, "over 64 characters"),
        ({"error": "sold_out"}, "sold_out"),
    ],
    ids=["html", "bad-utf8", "huge", "deep", "huge-string", "epoch", "naive", "empty-code",
         "long-code", "error"],
)  # fmt: skip
def test_an_odd_coupon_answer_is_not_issued_with_the_reason(odd, answer, reason) -> None:
    from core.errors import CouponNotIssued

    with pytest.raises(CouponNotIssued, match=reason):
        issue_at(odd, answer)


def test_a_coupon_answer_dripping_in_is_cut_off_at_the_timeout(odd) -> None:
    from core.errors import CouponNotIssued

    odd.delay_per_byte = 0.05  # 80 bytes: 4 s, each byte well within the read timeout
    started = time.monotonic()
    with pytest.raises(CouponNotIssued, match="still coming after the read timeout"):
        issue_at(odd, GOOD, timeout=(0.5, 1.0))
    assert time.monotonic() - started < 2.5


def test_a_good_coupon_answer_is_issued(odd) -> None:
    assert issue_at(odd, GOOD).code == "ABC123"


# -- sop/group-welcome.yaml as a hostile or careless operator writes it ----------------------

CARD = """text: 欢迎 %NICKNAME%
attachment:
  miniprogram:
    title: 进店逛逛
    appid: wx5f1d8e2a9c3b7d40
    page: pages/index/index
    picture: {picture}
"""
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


def welcome_problems(folder: Path, content: str | bytes) -> list[str]:
    from soplang.group_welcome import group_welcome_problems

    path = folder / "group-welcome.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return [f"{Path(p.path).name}:{p.line}: {p.message}" for p in group_welcome_problems(folder)]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("text: 欢迎\n# pad\n" + "# " + "x" * 300_000 + "\n", ":1: the file is 293 KB"),
        ("text: [欢迎, 你好]\n", ":1: text needs the welcome's words"),
        ("text: 欢迎\nattachment: media/eggs.png\n", ":2: attachment: Value error, write an attachment as `kind: value`"),
        ("text: 欢迎\nattachment:\n  image: 5\n", ":3: attachment image: Input should be a valid string"),
        ("text: 欢迎\nattachment:\n  image: media/eggs.png\n  link: {title: t, url: https://x.cn}\n", ":3: attachment: Value error, one attachment per"),
        ("text: 欢迎\nattachment:\n  video: media/eggs.png\n", ":3: a group welcome takes one image, link, miniprogram"),
        ("text: 欢迎\ncolour: red\n", ":2: unknown key `colour`"),
        ("text: 欢迎\ntext: 你好\n", ":2: key `text` is written twice"),
        ("text: 欢迎\nattachment:\n  image: media/missing.png\n", ":3: file `media/missing.png` does not exist"),
        ("text: 欢迎\nattachment:\n  image: ../eggs.png\n", ":3: `../eggs.png` points outside the SOP folder"),
        ("text: 欢迎\nattachment:\n  image: /etc/hostname\n", ":3: `/etc/hostname` is an absolute path"),
        ("text: 欢迎\nattachment:\n  image: \"media/eggs.png\\0.txt\"\n", ":3: `'media/eggs.png\\x00.txt'` has a control character"),
        (BOMB + "text: 欢迎\n", "has more than 10,000 values once its aliases"),
        ("text: &t 欢迎\nattachment: *t\n", ":1: attachment: Value error, write an attachment as `kind: value`, e.g. `- image: media/eggs.jpg`, not `欢迎`"),
        ("text: 欢迎\n\tattachment: x\n", ":2: not valid YAML"),
        ("text: 欢迎\n".encode("gbk") + "再见\n".encode("gbk"), ":1: "),
        (b"", ":1: the file is empty"),
        ("- text: 欢迎\n", ":1: write one `text: 欢迎 %NICKNAME% 加入本群` per line"),
        ("attachment:\n  image: media/eggs.png\n", ":1: a group welcome needs its `text:`"),
    ],
    ids=["huge", "text-list", "attachment-string", "image-number", "two-kinds", "video",
         "unknown-key", "twice", "missing-file", "dotdot", "absolute", "nul", "bomb", "alias",
         "tab", "gbk", "empty", "list", "no-text"],
)  # fmt: skip
def test_a_hostile_group_welcome_file_is_refused_on_its_line(folder, content, expected) -> None:
    found = welcome_problems(folder, content)
    assert any(expected in problem for problem in found), found
    assert all(p.startswith("group-welcome.yaml:") for p in found)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda f, o: (f / "media" / "out.png").symlink_to(o / "secret.png"), "points outside the SOP folder (a link?)"),
        (lambda f, o: (f / "media" / "out.png").write_bytes(b"\x89PNG\r\n\x1a\n"), ""),
        (lambda f, o: (f / "media" / "out.png").write_bytes(b"hello, not a picture" * 9), "is not really a PNG file"),
        (lambda f, o: (f / "media" / "out.png").write_bytes(b""), "must be more than 5 bytes"),
        (lambda f, o: (f / "media" / "out.png").write_bytes(b"\xff\xd8\xff" * (700_000) + b"x"), "at most 2 MB"),
        (lambda f, o: (f / "media" / "out.png").mkdir(), "does not exist"),
        (lambda f, o: (f / "media" / "out.png").symlink_to(f / "media" / "out.png"), "points outside"),
    ],
    ids=["symlink-outside", "png-header-only", "text-as-png", "zero-bytes", "over-2mb", "a-folder", "loop"],
)  # fmt: skip
def test_a_hostile_group_welcome_picture_is_refused(folder, tmp_path_factory, make, expected):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.png").write_bytes(PNG)
    make(folder, outside)

    found = welcome_problems(folder, CARD.format(picture="media/out.png"))

    if expected:
        assert [p for p in found if expected in p and p.startswith("group-welcome.yaml:7: ")], found
    else:
        assert found == []  # a PNG signature and nothing else: WeCom itself has the last word


def test_a_bad_group_welcome_file_fails_the_command_without_a_traceback(
    emulator, folder, monkeypatch
) -> None:
    from typer.testing import CliRunner

    from core.settings import reset_settings
    from sopflow.cli import app

    (folder / "group-welcome.yaml").write_text(BOMB + "text: hi\n", encoding="utf-8")
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder))
    reset_settings()

    result = CliRunner().invoke(app, ["group-welcome"])

    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "group-welcome.yaml:" in result.output and "10,000 values" in result.output
    assert emulator.calls == {}


# -- attachment files at send time (a templated path escapes lint: `{{ deal.picture }}`) ------


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("media/out.png", lambda p, o: p.symlink_to(o), "points outside the SOP folder"),
        ("media/../../out.png", lambda p, o: None, "points outside the SOP folder"),
        ("media/nul\0.png", lambda p, o: None, "a NUL in its name"),
        ("media/text.png", lambda p, o: p.write_bytes(b"<html>" * 100), "not really a JPG/PNG"),
        ("media/empty.png", lambda p, o: p.write_bytes(b""), "0 bytes"),
        ("media/big.jpg", lambda p, o: p.write_bytes(b"\xff\xd8\xff".ljust(10 * 1024 * 1024 + 1, b"x")), "10485761 bytes"),
        ("media/none.png", lambda p, o: None, "cannot be read"),
        ("media/loop.png", lambda p, o: p.symlink_to(p), "points outside the SOP folder"),
    ],
    ids=["symlink-outside", "dotdot", "nul", "html-as-png", "zero-bytes", "10mb+1", "missing", "loop"],
)  # fmt: skip
def test_a_hostile_attachment_file_is_refused_before_any_upload(
    client, emulator, folder, tmp_path_factory, name, make, reason
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.png"
    outside.write_bytes(PNG)
    if "\0" not in name:
        make(folder / name, outside)
    media = MediaFiles(client, MemoryMediaStore(), root=folder)

    with pytest.raises(ChannelError, match=reason) as refused:
        media.media_id(name, "image")

    assert refused.value.errcode in (40004, 40006, None)
    assert emulator.calls["/cgi-bin/media/upload"] == 0


def test_a_coupon_redirect_is_not_followed_with_the_signed_body(odd) -> None:
    from core.errors import CouponNotIssued

    odd.status = (307, odd.url + "/elsewhere/issue")
    with pytest.raises(CouponNotIssued, match=r"redirect \(HTTP 307\); set SOPFLOW_COUPON_URL"):
        issue_at(odd, GOOD)
    assert odd.paths == ["/coupons/issue"]


@pytest.mark.parametrize(
    "answer",
    [
        {"errcode": 0, "task_list": "bj.a"},
        {"errcode": 0, "task_list": [["bj.a", 1]]},
    ],
)
def test_an_odd_moment_task_answer_leaves_the_rows_for_next_time(
    staff, client, odd, odd_client, answer
) -> None:
    """collect-results reads who posted; an answer it cannot read changes no row."""
    from engine.moments import send_moments
    from engine.moments_results import collect_moments
    from tests.engine.test_moments import DAY, spec
    from tests.factories import deliveries

    send_moments(spec({"region": ["上海"]}), "main", DAY, client, sleep=lambda _: None)
    odd.answers["get_moment_task"] = answer

    totals = collect_moments(odd_client, robots=dict, remind=None)

    assert totals["moments error ChannelTransient"] == 1
    assert [r.status for r in deliveries()] == ["sent"]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (401, "signature refused \\(HTTP 401\\): check SOPFLOW_COUPON_SECRET"),
        (503, "coupon system error"),
    ],
)
def test_a_refused_signature_or_a_down_coupon_system_says_what_to_check(odd, status, reason):
    from core.errors import CouponNotIssued

    odd.status = (status, None)
    with pytest.raises(CouponNotIssued, match=reason):
        issue_at(odd, {"error": "bad signature"})


# -- attachments in SOP files, as lint sees them --------------------------------------------


def test_lint_refuses_step_attachments_that_link_outside_or_loop_or_are_empty(tmp_path_factory):
    from tests.soplang.test_attachments_lint import FIRST, errors
    from tests.soplang.test_attachments_lint import folder as sop_folder

    root = tmp_path_factory.mktemp("sop")
    outside = tmp_path_factory.mktemp("outside") / "secret.jpg"
    outside.write_bytes(b"\xff\xd8\xff" + b"s" * 100)
    path = sop_folder(
        root,
        "      - image: media/out.jpg\n"
        "      - image: media/loop.jpg\n"
        "      - file: media/empty.pdf\n"
        '      - image: "media/eggs.jpg\\0"\n',
    )
    (root / "media" / "out.jpg").symlink_to(outside)
    (root / "media" / "loop.jpg").symlink_to(root / "media" / "loop.jpg")
    (root / "media" / "empty.pdf").write_bytes(b"")

    found = errors(path)

    assert [p.split(": error: ")[0] for p in found] == [f"{path}:{FIRST + n}" for n in range(4)]
    assert "points outside the SOP folder (a link?)" in found[0]
    assert "points outside the SOP folder (a link?)" in found[1]
    assert "is 0 bytes; WeCom takes a file of more than 5 bytes" in found[2]
    assert "has a control character" in found[3]
