"""What a message carries besides its text (image, link, mini-program card, video, file), and WeCom's limits on it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from core.errors import ChannelRejected

Kind = Literal["image", "link", "miniprogram", "video", "file"]
KINDS: tuple[str, ...] = ("image", "link", "miniprogram", "video", "file")

MAX_ATTACHMENTS = 9
MAX_LINK_TITLE_BYTES = 128
MAX_LINK_DESC_BYTES = 512
MAX_MINIPROGRAM_TITLE_BYTES = 64

# WeCom's errcodes for attachments it refuses (WECOM_API.md §7).
ERRCODE_TOO_MANY_ATTACHMENTS = 41064
ERRCODE_BAD_ATTACHMENT = 41065
ERRCODE_TOO_LARGE = 45002
ERRCODE_MINIPROGRAM_NOT_LINKED = 90206


@dataclass(frozen=True)
class Attachment:
    """One rendered attachment, as a step's `attachments:` entry becomes after templating.

    `path` is a local file (relative to the SOP folder, e.g. `media/eggs.jpg`) that the channel
    uploads for a media id; `url` is a web address (an image's pic_url, a link's target).
    A link's `picture` is a URL; a mini-program's `picture` is its cover, a local file.
    """

    kind: Kind
    path: str | None = None
    url: str | None = None
    title: str | None = None
    description: str | None = None
    picture: str | None = None
    appid: str | None = None
    page: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"attachment kind must be one of {', '.join(KINDS)}, not {self.kind!r}"
            )

    def as_dict(self) -> dict[str, str]:
        """The fields that are set, for storage and previews."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    def describe(self) -> str:
        """One line an operator reads in a preview: `[小程序] 标题 → appid:page`."""
        label = {
            "image": "图片",
            "link": "链接",
            "miniprogram": "小程序",
            "video": "视频",
            "file": "文件",
        }
        if self.kind == "link":
            return f"[{label['link']}] {self.title or ''} → {self.url or ''}"
        if self.kind == "miniprogram":
            return f"[{label['miniprogram']}] {self.title or ''} → {self.appid or ''}:{self.page or ''}"
        return f"[{label[self.kind]}] {self.path or self.url or ''}"


_FIELDS = frozenset(f.name for f in fields(Attachment))


def dumps(attachments: Sequence[Attachment]) -> str | None:
    """The attachments as stored on a Message row (None when there are none)."""
    if not attachments:
        return None
    return json.dumps([a.as_dict() for a in attachments], ensure_ascii=False, sort_keys=True)


def loads(stored: str | None) -> tuple[Attachment, ...]:
    """The attachments of a Message row, as `dumps` wrote them."""
    if not stored:
        return ()
    items: list[dict[str, Any]] = json.loads(stored)
    return tuple(Attachment(**{k: v for k, v in item.items() if k in _FIELDS}) for item in items)


def _bytes(text: str | None) -> int:
    return len((text or "").encode("utf-8"))


def attachment_problems(attachments: Iterable[Attachment]) -> list[tuple[int, str]]:
    """What WeCom would refuse in these attachments: (errcode, reason), empty when all is well."""
    items = list(attachments)
    problems: list[tuple[int, str]] = []
    if len(items) > MAX_ATTACHMENTS:
        problems.append(
            (ERRCODE_TOO_MANY_ATTACHMENTS, f"{len(items)} attachments, at most {MAX_ATTACHMENTS}")
        )
    for number, item in enumerate(items, 1):
        where = f"attachment {number} ({item.kind})"
        if item.kind == "link":
            if not item.title or not item.url:
                problems.append(
                    (ERRCODE_BAD_ATTACHMENT, f"{where}: a link needs a title and a url")
                )
            if _bytes(item.title) > MAX_LINK_TITLE_BYTES:
                problems.append(
                    (
                        ERRCODE_TOO_LARGE,
                        f"{where}: title is {_bytes(item.title)} bytes, at most {MAX_LINK_TITLE_BYTES}",
                    )
                )
            if _bytes(item.description) > MAX_LINK_DESC_BYTES:
                problems.append(
                    (
                        ERRCODE_TOO_LARGE,
                        f"{where}: description is {_bytes(item.description)} bytes, at most {MAX_LINK_DESC_BYTES}",
                    )
                )
        elif item.kind == "miniprogram":
            if not item.title or not item.appid or not item.page or not item.picture:
                problems.append(
                    (
                        ERRCODE_BAD_ATTACHMENT,
                        f"{where}: a mini-program card needs title, appid, page and picture",
                    )
                )
            if _bytes(item.title) > MAX_MINIPROGRAM_TITLE_BYTES:
                problems.append(
                    (
                        ERRCODE_TOO_LARGE,
                        f"{where}: title is {_bytes(item.title)} bytes, at most {MAX_MINIPROGRAM_TITLE_BYTES}",
                    )
                )
        elif not item.path and not (item.kind == "image" and item.url):
            problems.append(
                (ERRCODE_BAD_ATTACHMENT, f"{where}: needs a file (or, for an image, a url)")
            )
    return problems


def check_attachments(attachments: Iterable[Attachment]) -> None:
    """Refuse, before any call, attachments WeCom would reject (the first problem's errcode)."""
    problems = attachment_problems(attachments)
    if problems:
        errcode, reason = problems[0]
        raise ChannelRejected(f"refused before sending: {reason}", errcode=errcode)
