"""Request checks and answer shapes the WeCom endpoints share: JSON bodies, limits, paging."""

from __future__ import annotations

import datetime as dt
import json

from channels.base import MAX_CHAT_IDS, MAX_EXTERNAL_USERIDS, MAX_TEXT_BYTES
from channels.emulator.config import (
    LOCAL_TZ,
    MAX_ATTACHMENTS,
    MAX_ROBOT_MARKDOWN_BYTES,
    MAX_ROBOT_TEXT_BYTES,
    ApiError,
    JsonDict,
)
from channels.errcodes import meaning


def error_answer(errcode: int, errmsg: str | None = None) -> tuple[int, JsonDict]:
    """A WeCom error answer: HTTP 200 with the errcode in the body."""
    return 200, {"errcode": errcode, "errmsg": errmsg or meaning(errcode)}


def over(limit: int | None, count: int) -> bool:
    """Whether `count` exceeds `limit` (None: no limit)."""
    return limit is not None and count > limit


def period_key(period: str, at: float) -> str:
    """The local day, ISO week or month `at` falls in, as a string key."""
    local = dt.datetime.fromtimestamp(at, LOCAL_TZ)
    if period == "day":
        return local.date().isoformat()
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{local.year}-{local.month:02d}"


def parse_json(body: bytes) -> JsonDict:
    """The JSON object of a request body (empty: `{}`); anything else is 40058."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(40058, "invalid JSON body") from None
    if not isinstance(data, dict):
        raise ApiError(40058, "the JSON body must be an object")
    return data


def targets_of(chat_type: str, body: JsonDict, sender: str) -> list[str]:
    """The targets of an add_msg_template body, validated against WeCom's limits."""
    if chat_type not in ("single", "group"):
        raise ApiError(40058, "chat_type must be single or group")
    if chat_type == "group":
        if not sender:
            raise ApiError(40058, "sender is required for group messages")
        key, limit = "chat_id_list", MAX_CHAT_IDS
    else:
        key, limit = "external_userid", MAX_EXTERNAL_USERIDS
    targets = body.get(key) or []
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise ApiError(40058, f"{key} must be a list of strings")
    if not targets:
        raise ApiError(41048)
    if len(targets) > limit:
        raise ApiError(40058, f"{key} has {len(targets)} items, at most {limit}")
    return targets


def check_text(body: JsonDict) -> None:
    """Refuse a mass message WeCom would: too many attachments, empty or over-long text."""
    content = (body.get("text") or {}).get("content") or ""
    attachments = body.get("attachments") or []
    if len(attachments) > MAX_ATTACHMENTS:
        raise ApiError(41064)
    if not content.strip() and not attachments:
        raise ApiError(44004)
    if len(content.encode("utf-8")) > MAX_TEXT_BYTES:
        raise ApiError(45002)


def check_robot_message(body: JsonDict) -> None:
    """Refuse a robot message WeCom would: unknown type, empty or over-long text or markdown."""
    msgtype = body.get("msgtype")
    if msgtype not in ("text", "markdown", "image", "news", "file", "template_card"):
        raise ApiError(40058, "invalid msgtype")
    if msgtype not in ("text", "markdown"):
        return
    content = (body.get(msgtype) or {}).get("content") or ""
    limit = MAX_ROBOT_TEXT_BYTES if msgtype == "text" else MAX_ROBOT_MARKDOWN_BYTES
    if not content.strip():
        raise ApiError(44004)
    if len(content.encode("utf-8")) > limit:
        raise ApiError(40058, f"{msgtype}.content exceed max length {limit}")


def paged(rows: list[JsonDict], body: JsonDict, key: str, max_limit: int) -> JsonDict:
    """One page of `rows` from the body's cursor; `next_cursor` is empty on the last page."""
    limit = body.get("limit") or max_limit
    if not isinstance(limit, int) or not 0 < limit <= max_limit:
        raise ApiError(40058, f"limit must be 1..{max_limit}")
    cursor = body.get("cursor") or ""
    try:
        offset = int(cursor[1:]) if cursor else 0
    except ValueError:
        raise ApiError(40058, "invalid cursor") from None
    if cursor and (not cursor.startswith("c") or offset < 0):
        raise ApiError(40058, "invalid cursor")
    end = offset + limit
    return {key: rows[offset:end], "next_cursor": f"c{end}" if end < len(rows) else ""}
