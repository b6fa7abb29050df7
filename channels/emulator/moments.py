"""Moments (朋友圈) tasks as WeCom runs them: add_moment_task makes an asynchronous job,
get_moment_task_result answers running then done, get_moment_list / get_moment_task say which
staff members posted (the `moment_posters` knob decides, read at each call).

Knobs (POST /emulator/config): `moment_posters` (userids that post; null: everyone),
`moment_running_polls` (a job answers status 1 this many times first), `moment_invalid_senders`
(userids WeCom refuses: `invalid_sender_list`). Faults (`fail_next`, HTTP 500, lost answers) apply
as to every other API.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from channels.emulator.config import EXTERNALCONTACT, MAX_ATTACHMENTS, ApiError, JsonDict

MAX_MOMENT_SENDERS = 10_000  # UNCONFIRMED: no source settles the user_list limit
MAX_MOMENT_TEXT_CHARS = 2000  # text.content (official doc 95094)
MAX_MOMENT_LIST_PAGE = 20  # get_moment_list limit
MAX_MOMENT_TASK_PAGE = 1000  # get_moment_task limit
RUNNING, DONE = 1, 2


@dataclass
class MomentBook:
    """Jobs by jobid and the moments they created by moment_id."""

    jobs: dict[str, JsonDict] = field(default_factory=dict)
    moments: dict[str, JsonDict] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def public(self) -> JsonDict:
        return {"jobs": dict(self.jobs), "moments": dict(self.moments)}


def book(emulator: Any) -> MomentBook:
    """The emulator's moments, made on first use."""
    found = getattr(emulator, "_moment_book", None)
    if found is None:
        found = emulator._moment_book = MomentBook()
    return found


def _attachments(body: JsonDict) -> list[JsonDict]:
    """Moments carry up to 9 images, or one video, or one link (41064 / 41065 otherwise)."""
    items = body.get("attachments") or []
    if not isinstance(items, list):
        raise ApiError(40058, "attachments must be a list")
    if len(items) > MAX_ATTACHMENTS:
        raise ApiError(41064)
    kinds = [item.get("msgtype") if isinstance(item, dict) else None for item in items]
    if any(kind not in ("image", "video", "link") for kind in kinds):
        raise ApiError(41065, "moments take image, video or link attachments")
    if len(kinds) > 1 and set(kinds) != {"image"}:
        raise ApiError(41065, "a moment takes images, or one video, or one link")
    return items


def add_moment_task(emulator: Any, _: dict[str, str], body: JsonDict) -> JsonDict:
    """POST externalcontact/add_moment_task: a job that creates one moment for the senders."""
    text = str((body.get("text") or {}).get("content") or "")
    attachments = _attachments(body)
    if not text and not attachments:
        raise ApiError(44004)
    if len(text) > MAX_MOMENT_TEXT_CHARS:
        raise ApiError(45002)
    senders = ((body.get("visible_range") or {}).get("sender_list") or {}).get("user_list") or []
    if not senders:
        raise ApiError(40058, "visible_range.sender_list.user_list is empty")
    if len(senders) > MAX_MOMENT_SENDERS:
        raise ApiError(40058, f"at most {MAX_MOMENT_SENDERS} senders per task")
    moments = book(emulator)
    with moments.lock:
        number = len(moments.jobs) + 1
        jobid, moment_id = f"momentjob{number:06d}", f"mom{number:06d}"
        invalid = [u for u in senders if u in emulator.config.moment_invalid_senders]
        valid = [u for u in senders if u not in invalid]
        moments.jobs[jobid] = {"moment_id": moment_id, "polls": 0, "invalid": invalid}
        moments.moments[moment_id] = {
            "moment_id": moment_id,
            "creator": "",
            "create_time": int(emulator.clock()),
            "create_type": 0,
            "visible_type": 1,
            "text": {"content": text},
            "attachments": attachments,
            "senders": valid,
        }
    return {"jobid": jobid}


def get_moment_task_result(emulator: Any, query: dict[str, str], _: JsonDict) -> JsonDict:
    """GET externalcontact/get_moment_task_result?jobid=: status 1 running, 2 done."""
    moments = book(emulator)
    with moments.lock:
        job = moments.jobs.get(query.get("jobid") or "")
        if job is None:
            raise ApiError(40058, "invalid jobid")
        job["polls"] += 1
        if job["polls"] <= emulator.config.moment_running_polls:
            return {"status": RUNNING, "type": "add_moment_task"}
        return {
            "status": DONE,
            "type": "add_moment_task",
            "result": {
                "errcode": 0,
                "errmsg": "ok",
                "moment_id": job["moment_id"],
                "invalid_sender_list": {"user_list": job["invalid"]},
            },
        }


def _posted(emulator: Any, userid: str) -> int:
    posters = emulator.config.moment_posters
    return 1 if posters is None or userid in posters else 0


def _page(items: list[Any], body: JsonDict, most: int) -> tuple[list[Any], str]:
    limit = min(int(body.get("limit") or most), most)
    start = int(body.get("cursor") or 0)
    end = start + limit
    return items[start:end], str(end) if end < len(items) else ""


def get_moment_list(emulator: Any, _: dict[str, str], body: JsonDict) -> JsonDict:
    """POST externalcontact/get_moment_list: the company's moments created in [start, end]."""
    start, end = int(body.get("start_time") or 0), int(body.get("end_time") or 0)
    if end < start:
        raise ApiError(40058, "end_time is before start_time")
    moments = book(emulator)
    with moments.lock:
        found = [
            {k: v for k, v in m.items() if k not in ("senders", "attachments")}
            for m in moments.moments.values()
            if start <= m["create_time"] <= end
        ]
    page, cursor = _page(found, body, MAX_MOMENT_LIST_PAGE)
    return {"next_cursor": cursor, "moment_list": page}


def get_moment_task(emulator: Any, _: dict[str, str], body: JsonDict) -> JsonDict:
    """POST externalcontact/get_moment_task: each sender's publish_status (0 not yet, 1 posted)."""
    moments = book(emulator)
    with moments.lock:
        moment = moments.moments.get(str(body.get("moment_id") or ""))
        if moment is None:
            raise ApiError(40058, "invalid moment_id")
        senders = list(moment["senders"])
    tasks = [{"userid": u, "publish_status": _posted(emulator, u)} for u in senders]
    page, cursor = _page(tasks, body, MAX_MOMENT_TASK_PAGE)
    return {"next_cursor": cursor, "task_list": page}


MOMENT_ROUTES = {
    ("POST", EXTERNALCONTACT + "add_moment_task"): add_moment_task,
    ("GET", EXTERNALCONTACT + "get_moment_task_result"): get_moment_task_result,
    ("POST", EXTERNALCONTACT + "get_moment_list"): get_moment_list,
    ("POST", EXTERNALCONTACT + "get_moment_task"): get_moment_task,
}
