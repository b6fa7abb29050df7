"""sop/group-welcome.yaml becomes WeCom's group welcome template: added once, edited on change."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from channels import get_channel
from channels.emulator import WeComEmulator
from channels.emulator.group_welcome import templates
from channels.emulator.media import media_book
from channels.media import use_media_store
from core.errors import ChannelRejected
from core.settings import get_settings, reset_settings
from engine.group_welcome import apply_group_welcome
from models.media import MediaUploads
from sopflow.cli import app
from soplang.group_welcome import group_welcome_problems

NOW = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)
APPID = "wx5f1d8e2a9c3b7d40"
CARD = f"""text: |
  欢迎 %NICKNAME% 加入本群
attachment:
  miniprogram:
    title: 进店逛逛
    appid: {APPID}
    page: pages/index/index
    picture: media/cover.png
"""
ADD = "/cgi-bin/externalcontact/group_welcome_template/add"
EDIT = "/cgi-bin/externalcontact/group_welcome_template/edit"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    sop = tmp_path / "sop"
    (sop / "media").mkdir(parents=True)
    (sop / "media" / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"a" * 300)
    (sop / "group-welcome.yaml").write_text(CARD, encoding="utf-8")
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(sop))
    reset_settings()
    return sop


@pytest.fixture
def channel(emulator: WeComEmulator, folder: Path):
    emulator.configure(linked_appids=[APPID])
    wecom = get_channel(get_settings())
    use_media_store(wecom, MediaUploads(), root=folder)
    yield wecom
    wecom.close()


def test_the_template_is_added_once_edited_when_the_file_changes_and_else_left_alone(
    emulator, channel, folder
) -> None:
    added = apply_group_welcome(channel, folder, now=NOW)
    unchanged = apply_group_welcome(channel, folder, now=NOW)
    (folder / "group-welcome.yaml").write_text(CARD.replace("加入本群", "加入本群🎉"), "utf-8")
    edited = apply_group_welcome(channel, folder, now=NOW)
    (folder / "media" / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"b" * 300)
    new_picture = apply_group_welcome(channel, folder, now=NOW)
    again = apply_group_welcome(channel, folder, now=NOW)

    assert [a.action for a in (added, unchanged, edited, new_picture, again)] == [
        "added", "unchanged", "edited", "edited", "unchanged",
    ]  # fmt: skip
    assert {a.template_id for a in (added, unchanged, edited, new_picture, again)} == {
        added.template_id
    }
    (template_id, kept), *others = templates(emulator).items()
    assert others == [] and template_id == added.template_id and kept["edits"] == 2
    assert kept["text"] == {"content": "欢迎 %NICKNAME% 加入本群🎉"}
    newest = media_book(emulator).uploads[-1]["media_id"]
    assert kept["miniprogram"] == {"title": "进店逛逛", "pic_media_id": newest, "appid": APPID,
                                   "page": "pages/index/index"}  # fmt: skip
    assert (emulator.calls[ADD], emulator.calls[EDIT]) == (1, 2)


def test_an_image_goes_in_as_a_permanent_uploadimg_url(emulator, channel, folder) -> None:
    (folder / "media" / "eggs.jpg").write_bytes(b"\xff\xd8\xff" + b"e" * 300)
    (folder / "group-welcome.yaml").write_text(
        "text: 欢迎 %NICKNAME%\nattachment:\n  image: media/eggs.jpg\n", "utf-8"
    )

    added = apply_group_welcome(channel, folder, now=NOW)

    kept = templates(emulator)[added.template_id]
    assert kept["image"] == {"pic_url": media_book(emulator).uploads[0]["url"]}
    assert media_book(emulator).uploads[0]["type"] == "uploadimg"


def test_a_refused_template_is_not_recorded_and_is_added_once_fixed(emulator, channel, folder):
    emulator.configure(linked_appids=["wx-some-other-shop"])
    with pytest.raises(ChannelRejected, match=r"小程序未关联企业 .*\(90206\)"):
        apply_group_welcome(channel, folder, now=NOW)
    emulator.configure(linked_appids=[APPID])

    assert apply_group_welcome(channel, folder, now=NOW).action == "added"
    assert len(templates(emulator)) == 1


def test_lint_names_each_problem_of_the_file_on_its_line(folder: Path) -> None:
    (folder / "group-welcome.yaml").write_text(
        "text: |\n  欢迎\ncolour: red\nattachment:\n  image: https://cdn.example/a.jpg\n", "utf-8"
    )
    found = [(p.line, p.message) for p in group_welcome_problems(folder)]
    assert [line for line, _ in found] == [3, 5]
    assert "unknown key `colour`" in found[0][1] and "put it under media/" in found[1][1]

    (folder / "group-welcome.yaml").write_text(
        f"text: {'长' * 1001}\nattachment:\n  video: media/clip.mp4\n", "utf-8"
    )
    messages = " | ".join(p.message for p in group_welcome_problems(folder))
    assert "one image, link, miniprogram" in messages and "3003 bytes" in messages
    assert group_welcome_problems(folder.parent) == []  # no file, nothing to say


def test_the_command_says_what_it_would_do_and_then_does_it(emulator, channel, folder) -> None:
    runner = CliRunner()
    dry = runner.invoke(app, ["group-welcome", "--dry-run"])
    real = runner.invoke(app, ["group-welcome"])
    again = runner.invoke(app, ["group-welcome"])

    assert dry.exit_code == 0 and "would add" in dry.output, dry.output
    assert real.exit_code == 0 and "added (template_id emu-gw-" in real.output, real.output
    assert again.exit_code == 0 and "unchanged" in again.output
    assert len(templates(emulator)) == 1
