"""Lint holds a step's `attachments:` to WeCom's limits, each problem on its file line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT, reset_settings
from soplang.lint import lint_paths
from soplang.loader import load_sop

HEAD = """---
id: morning-price
title: 早报价
kind: community
channel: group
category: fresh
schedule: {cron: "30 8 * * *"}
audience:
  groups: {theme: [生鲜]}
steps:
  - name: main
    attachments:
"""
BODY = """---
## main
{{ group.name }}早上好，今日特价{{ deals | length }}款
"""
FIRST = 13  # the file line of the first attachment


def folder(tmp_path: Path, attachments: str) -> Path:
    """An SOP folder with media/ holding the shipped images, and one file with `attachments`."""
    shutil.copytree(PROJECT_ROOT / "sop" / "media", tmp_path / "media")
    path = tmp_path / "community" / "morning-price.md"
    path.parent.mkdir()
    path.write_text(HEAD + attachments + BODY, encoding="utf-8")
    return path


def errors(path: Path) -> list[str]:
    return [str(p) for p in lint_paths(path) if p.is_error]


def test_shipped_media_image_and_a_link_lint_clean(tmp_path: Path) -> None:
    path = folder(
        tmp_path,
        "      - image: media/eggs.jpg\n"
        '      - link: {title: "双12 清单", url: "https://shop.example.com/d12?g={{ group.chat_id }}"}\n',
    )
    assert errors(path) == []
    spec = load_sop(path)
    assert [a.kind for a in spec.step("main").attachments] == ["image", "link"]


def test_ten_attachments_are_refused_on_the_attachments_line(tmp_path: Path) -> None:
    path = folder(tmp_path, "      - image: media/eggs.jpg\n" * 10)
    assert errors(path) == [
        f"{path}:12: error: `steps.attachments`: 10 attachments, WeCom takes at most 9 per "
        "message; drop some or split the step"
    ]


def test_link_title_and_description_byte_limits(tmp_path: Path) -> None:
    title, description = "标" * 43, "述" * 171  # 129 and 513 bytes in UTF-8
    path = folder(
        tmp_path,
        "      - link:\n"
        f"          title: {title}\n"
        f"          description: {description}\n"
        "          url: https://shop.example.com\n",
    )
    assert errors(path) == [
        f"{path}:{FIRST + 1}: error: link title is 129 bytes; WeCom allows 128 (UTF-8): shorten it",
        f"{path}:{FIRST + 2}: error: link description is 513 bytes; WeCom allows 512 (UTF-8): "
        "shorten it",
    ]


def test_a_templated_title_is_checked_on_the_sample_render(tmp_path: Path) -> None:
    path = folder(
        tmp_path,
        "      - miniprogram:\n"
        '          title: "{{ group.name }}{{ group.name }}{{ group.name }}"\n'
        "          appid: wx5f1d8e2a9c3b7d40\n"
        "          page: pages/index\n"
        "          picture: media/d12-cover.png\n",
    )
    (problem,) = errors(path)
    assert problem.startswith(f"{path}:12: error: attachment 1 (miniprogram): title is 72 bytes")
    assert "with the sample context (WeCom: 45002)" in problem


def test_missing_outside_and_wrong_type_files(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "fake.png").write_bytes(b"not a png at all")
    (tmp_path / "media" / "clip.mov").write_bytes(b"\0" * 64)
    shutil.copytree(PROJECT_ROOT / "sop" / "media", tmp_path / "shipped")
    path = folder(
        tmp_path / "sop",
        "      - image: media/nothing.jpg\n"
        "      - file: ../secrets.txt\n"
        "      - image: /etc/passwd\n"
        "      - video: https://cdn.example.com/a.mp4\n",
    )
    assert errors(path) == [
        f"{path}:{FIRST}: error: file `media/nothing.jpg` does not exist in {tmp_path / 'sop'}; "
        "add it under media/",
        f"{path}:{FIRST + 1}: error: `../secrets.txt` points outside the SOP folder (`..`); "
        "put the file under sop/media/",
        f"{path}:{FIRST + 2}: error: `/etc/passwd` is an absolute path; write a file under the "
        "SOP folder, e.g. media/eggs.jpg",
        f"{path}:{FIRST + 3}: error: a video is sent from a file: put it under media/, not "
        "`https://cdn.example.com/a.mp4`",
    ]


def test_file_types_sizes_and_content(tmp_path: Path) -> None:
    path = folder(
        tmp_path,
        "      - image: media/fake.png\n"
        "      - video: media/clip.mov\n"
        "      - file: media/tiny.pdf\n"
        "      - image: media/huge.jpg\n",
    )
    (tmp_path / "media" / "fake.png").write_bytes(b"not a png at all")
    (tmp_path / "media" / "clip.mov").write_bytes(b"\0" * 64)
    (tmp_path / "media" / "tiny.pdf").write_bytes(b"%PDF")
    with (tmp_path / "media" / "huge.jpg").open("wb") as huge:
        huge.write(b"\xff\xd8\xff")
        huge.truncate(10 * 1024 * 1024 + 1)
    assert errors(path) == [
        f"{path}:{FIRST}: error: `media/fake.png` is not really a PNG file; re-export it",
        f"{path}:{FIRST + 1}: error: a video must be MP4, not `media/clip.mov`",
        f"{path}:{FIRST + 2}: error: `media/tiny.pdf` is 4 bytes; WeCom takes a file of more "
        "than 5 bytes and at most 20 MB",
        f"{path}:{FIRST + 3}: error: `media/huge.jpg` is 10,485,761 bytes; WeCom takes a image "
        "of more than 5 bytes and at most 10 MB",
    ]


def test_a_miniprogram_appid_must_be_linked_in_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPFLOW_MINIPROGRAM_APPIDS", "wxaaaa, wxbbbb")
    reset_settings()
    card = (
        "      - miniprogram: {title: 秒杀, appid: APPID, page: pages/index, "
        "picture: media/d12-cover.png}\n"
    )
    path = folder(tmp_path, card.replace("APPID", "wxcccc"))
    assert errors(path) == [
        f"{path}:{FIRST}: error: mini-program appid `wxcccc` is not in SOPFLOW_MINIPROGRAM_APPIDS "
        "(wxaaaa, wxbbbb); link the mini-program to the company in WeCom's admin console and add "
        "its appid there (WeCom refuses others: 90206)"
    ]
    path.write_text(HEAD + card.replace("APPID", "wxbbbb") + BODY, encoding="utf-8")
    assert errors(path) == []
    monkeypatch.undo()
    reset_settings()  # later tests read the shipped appids again


def test_an_entry_with_two_kinds_is_refused(tmp_path: Path) -> None:
    path = folder(tmp_path, "      - {image: media/eggs.jpg, file: media/eggs.jpg}\n")
    (two,) = errors(path)
    assert two.startswith(f"{path}:{FIRST}: error:")
    assert "one attachment per `-` entry; this one has image, file" in two


def test_an_unknown_variable_in_a_templated_field_is_named_on_its_line(tmp_path: Path) -> None:
    path = folder(
        tmp_path, "      - image: media/eggs.jpg\n" + '      - image: "{{ deal.picture }}"\n'
    )
    (unknown,) = errors(path)
    assert unknown.startswith(f"{path}:{FIRST + 1}: error: variable `deal` is not available")
    assert "(did you mean `deals`?)" in unknown


def test_a_robot_post_takes_no_attachments(tmp_path: Path) -> None:
    path = folder(tmp_path, "      - image: media/eggs.jpg\n")
    path.write_text(
        path.read_text(encoding="utf-8").replace("channel: group", "channel: robot"),
        encoding="utf-8",
    )
    assert f"{path}:12: error: a group robot posts text only" in "\n".join(errors(path))
