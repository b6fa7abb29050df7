"""Group welcome templates in the emulator (`externalcontact/group_welcome_template/add|edit|get|del`),
checked like WeCom: text at most 3000 bytes, at most one of image/link/miniprogram/file/video,
at most 100 templates. Kept in memory; `templates(emulator)` lists them for tests."""

from __future__ import annotations

import secrets
from typing import Any

from channels.emulator.config import EXTERNALCONTACT, ApiError, JsonDict
from channels.emulator.media import check_attachment, media_book

PATH = EXTERNALCONTACT + "group_welcome_template/"
MAX_TEXT_BYTES = 3000
MAX_TEMPLATES = 100
KINDS = ("image", "link", "miniprogram", "file", "video")


def templates(emulator: Any) -> dict[str, JsonDict]:
    """The emulator's templates by template_id, made on first use."""
    found = getattr(emulator, "_group_welcome_templates", None)
    if found is None:
        found = emulator._group_welcome_templates = {}
    return found


def _content(emulator: Any, body: JsonDict) -> JsonDict:
    """The template's text and attachment, refused as WeCom would."""
    text = (body.get("text") or {}).get("content") or ""
    kinds = [kind for kind in KINDS if body.get(kind)]
    if not text.strip() and not kinds:
        raise ApiError(44004, "text, image, link, miniprogram, file and video are all empty")
    if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise ApiError(45002, f"text.content is over {MAX_TEXT_BYTES} bytes")
    if len(kinds) > 1:
        raise ApiError(41065, f"at most one of {', '.join(KINDS)}, not {', '.join(kinds)}")
    content: JsonDict = {"text": {"content": text}} if text else {}
    for kind in kinds:
        item = body[kind]
        if kind == "image" and isinstance(item, dict) and item.get("pic_url"):
            if item["pic_url"] not in media_book(emulator).images:
                raise ApiError(40058, "image.pic_url must be a URL media/uploadimg gave")
        check_attachment(emulator, {"msgtype": kind, kind: item})
        content[kind] = item
    return content


def _known(emulator: Any, body: JsonDict) -> str:
    template_id = body.get("template_id") or ""
    if template_id not in templates(emulator):
        raise ApiError(40058, f"invalid template_id {template_id!r}")
    return str(template_id)


def add(emulator: Any, _: dict[str, str], body: JsonDict) -> JsonDict:
    """POST group_welcome_template/add → {template_id}."""
    content = _content(emulator, body)
    if len(templates(emulator)) >= MAX_TEMPLATES:
        raise ApiError(40058, f"at most {MAX_TEMPLATES} group welcome templates per company")
    template_id = f"emu-gw-{secrets.token_hex(8)}"
    templates(emulator)[template_id] = {**content, "notify": body.get("notify", 1),
                                        "created_at": emulator.clock(), "edits": 0}  # fmt: skip
    return {"template_id": template_id}


def edit(emulator: Any, _: dict[str, str], body: JsonDict) -> JsonDict:
    """POST group_welcome_template/edit: the template's content replaced."""
    template_id = _known(emulator, body)
    content = _content(emulator, body)
    kept = templates(emulator)[template_id]
    edits = kept["edits"] + 1
    templates(emulator)[template_id] = {**content, "notify": kept["notify"],
                                        "created_at": kept["created_at"], "edits": edits}  # fmt: skip
    return {}


def get(emulator: Any, _: dict[str, str], body: JsonDict) -> JsonDict:
    """POST group_welcome_template/get → text and its attachment."""
    kept = templates(emulator)[_known(emulator, body)]
    return {key: value for key, value in kept.items() if key in ("text", *KINDS)}


def delete(emulator: Any, _: dict[str, str], body: JsonDict) -> JsonDict:
    """POST group_welcome_template/del."""
    del templates(emulator)[_known(emulator, body)]
    return {}


GROUP_WELCOME_ROUTES = {
    ("POST", PATH + "add"): add,
    ("POST", PATH + "edit"): edit,
    ("POST", PATH + "get"): get,
    ("POST", PATH + "del"): delete,
}
