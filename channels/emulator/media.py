"""Media in the emulator: `media/upload` (multipart; ids that expire 3 days later on the
emulator's clock), `media/uploadimg` (permanent URLs), and the attachment checks WeCom makes
in add_msg_template, send_welcome_msg, the group welcome template and moments.

Kept in memory only: a restarted emulator has forgotten its media ids and answers 40007 for
them, which the client meets by uploading again (channels/wecom_attachments.py).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from channels.emulator.config import ApiError, JsonDict
from channels.emulator.wire import parse_json

UPLOAD = "/cgi-bin/media/upload"
UPLOADIMG = "/cgi-bin/media/uploadimg"
MULTIPART = frozenset({UPLOAD, UPLOADIMG})  # bodies read as multipart/form-data, not JSON
MEDIA_LIFETIME = 3 * 86400.0
MIN_BYTES = 5
# type -> (suffixes, largest size in bytes), as WeCom's media/upload and uploadimg take them
LIMITS = {
    "image": ((".jpg", ".jpeg", ".png"), 10 * 1024 * 1024),
    "voice": ((".amr",), 2 * 1024 * 1024),
    "video": ((".mp4",), 10 * 1024 * 1024),
    "file": ((), 20 * 1024 * 1024),
    "uploadimg": ((".jpg", ".jpeg", ".png"), 2 * 1024 * 1024),
}
MAX_ATTACHMENTS = 9
MAX_BYTES = {("link", "title"): 128, ("link", "desc"): 512, ("miniprogram", "title"): 64}
REQUIRED = {
    "image": (),  # media_id or pic_url, checked apart
    "link": ("title", "url"),
    "miniprogram": ("title", "pic_media_id", "appid", "page"),
    "video": ("media_id",),
    "file": ("media_id",),
}


@dataclass
class MediaBook:
    """The media ids and picture URLs the emulator handed out, and every upload made."""

    media: dict[str, JsonDict] = field(default_factory=dict)  # media_id -> type, created_at, …
    images: dict[str, JsonDict] = field(default_factory=dict)  # uploadimg URL -> filename, …
    uploads: list[JsonDict] = field(default_factory=list)  # every upload, in order

    def public(self) -> JsonDict:
        return {
            "media": dict(self.media),
            "images": dict(self.images),
            "uploads": list(self.uploads),
        }


def media_book(emulator: Any) -> MediaBook:
    """The emulator's media book, made on first use (reset with the emulator's `forget`)."""
    found = getattr(emulator, "_media_book", None)
    if found is None:
        found = emulator._media_book = MediaBook()
    return found


def read_body(path: str, body: bytes) -> JsonDict:
    """The request body of `path`: the raw bytes of a multipart upload, else the JSON object."""
    if path in MULTIPART:
        return {"multipart": body}
    return parse_json(body)


def parse_media(body: bytes) -> tuple[str, bytes]:
    """The filename and bytes of the `media` field of a multipart/form-data body (41005 when
    there is none); the boundary is the body's first line."""
    first = body.split(b"\r\n", 1)[0]
    if not first.startswith(b"--") or len(first) < 3:
        raise ApiError(41005, "missing media data: send multipart/form-data with a `media` field")
    boundary = first[2:].decode("latin-1")
    head = f'Content-Type: multipart/form-data; boundary="{boundary}"\r\n\r\n'.encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "media":
            data = part.get_payload(decode=True)
            return str(part.get_filename() or "media"), data if isinstance(data, bytes) else b""
    raise ApiError(41005, "missing media data: no `media` field in the form")


def _check_file(kind: str, name: str, data: bytes) -> None:
    suffixes, largest = LIMITS[kind]
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffixes and suffix not in suffixes:
        raise ApiError(40004, f"invalid media type: a {kind} must be {'/'.join(suffixes)}")
    if not MIN_BYTES < len(data) <= largest:
        raise ApiError(40006, f"invalid file size: {len(data)} bytes for a {kind}")


def upload(emulator: Any, query: dict[str, str], body: JsonDict) -> JsonDict:
    """POST media/upload?type=image|voice|video|file: a media id that lives 3 days."""
    kind = query.get("type") or ""
    if kind not in ("image", "voice", "video", "file"):
        raise ApiError(40004, "invalid media type: type must be image, voice, video or file")
    name, data = parse_media(body.get("multipart") or b"")
    _check_file(kind, name, data)
    book, now = media_book(emulator), emulator.clock()
    media_id = f"emu-media-{secrets.token_urlsafe(18)}"
    record = {"type": kind, "filename": name, "size": len(data), "created_at": now,
              "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip
    book.media[media_id] = record
    book.uploads.append({"media_id": media_id, **record})
    return {"type": kind, "media_id": media_id, "created_at": str(int(now))}


def uploadimg(emulator: Any, _: dict[str, str], body: JsonDict) -> JsonDict:
    """POST media/uploadimg: a permanent picture URL (jpg/png, at most 2 MB)."""
    name, data = parse_media(body.get("multipart") or b"")
    _check_file("uploadimg", name, data)
    book = media_book(emulator)
    digest = hashlib.sha256(data).hexdigest()
    url = f"https://wework.qpic.cn/emulator/{digest[:32]}/0"
    book.images[url] = {"filename": name, "size": len(data), "created_at": emulator.clock()}
    book.uploads.append({"url": url, "type": "uploadimg", "filename": name, "sha256": digest})
    return {"url": url}


def check_media_id(emulator: Any, media_id: object) -> None:
    """40007 for a media id the emulator never gave or gave more than 3 days ago."""
    found = media_book(emulator).media.get(media_id) if isinstance(media_id, str) else None
    if found is None or emulator.clock() - found["created_at"] >= MEDIA_LIFETIME:
        raise ApiError(40007, f"invalid media_id {media_id!r} (unknown or older than 3 days)")


def check_attachment(emulator: Any, item: object) -> None:
    """One attachment checked like WeCom: its type and fields (41065), lengths (45002), the
    mini-program's appid (90206), its media ids (40007)."""
    msgtype = item.get("msgtype") if isinstance(item, dict) else None
    if msgtype not in REQUIRED:
        raise ApiError(41065, f"invalid attachment type {msgtype!r}")
    assert isinstance(item, dict)
    content = item.get(msgtype)
    if not isinstance(content, dict):
        raise ApiError(41065, f"attachment {msgtype} without its `{msgtype}` object")
    missing = [key for key in REQUIRED[msgtype] if not content.get(key)]
    if msgtype == "image" and not (content.get("media_id") or content.get("pic_url")):
        missing = ["media_id or pic_url"]
    if missing:
        raise ApiError(41065, f"attachment {msgtype} misses {', '.join(missing)}")
    for (kind, key), limit in MAX_BYTES.items():
        if kind == msgtype and len(str(content.get(key) or "").encode("utf-8")) > limit:
            raise ApiError(45002, f"{msgtype}.{key} is over {limit} bytes")
    linked = emulator.config.linked_appids
    if msgtype == "miniprogram" and linked is not None and content["appid"] not in linked:
        raise ApiError(90206, f"mini-program {content['appid']} is not linked to the company")
    for key in ("media_id", "pic_media_id"):
        if content.get(key):
            check_media_id(emulator, content[key])


def check_attachments(emulator: Any, attachments: object, limit: int = MAX_ATTACHMENTS) -> None:
    """A request's `attachments` list checked like WeCom (more than `limit` → 41064)."""
    if attachments is None:
        return
    if not isinstance(attachments, list):
        raise ApiError(41065, "attachments must be a list")
    if len(attachments) > limit:
        raise ApiError(41064, f"{len(attachments)} attachments, at most {limit}")
    for item in attachments:
        check_attachment(emulator, item)


MEDIA_ROUTES = {("POST", UPLOAD): upload, ("POST", UPLOADIMG): uploadimg}
