"""Moments (朋友圈) tasks with the WeCom client's token and limiter: create, poll, list, publish status."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from channels.attachments import Attachment
from channels.http import JsonDict, required
from channels.wecom import EXTERNALCONTACT, WeComClient, _page, _pages
from channels.wecom_attachments import uploads_before_the_call
from core.errors import ChannelRejected, ChannelTransient

# Senders per add_moment_task. UNCONFIRMED: no source settles WeCom's user_list limit; the
# emulator refuses more than this (channels/emulator/moments.py).
MAX_MOMENT_SENDERS = 10_000
JOB_RUNNING, JOB_DONE, JOB_FAILED = 1, 2, 3  # get_moment_task_result status


@dataclass(frozen=True)
class MomentJobResult:
    """What get_moment_task_result answered: the job's status and, when done, its moment."""

    status: int
    moment_id: str = ""
    invalid_senders: tuple[str, ...] = ()
    errcode: int = 0
    errmsg: str = ""


def add_moment_task(
    client: WeComClient, content: str, senders: Sequence[str], attachments: Sequence[JsonDict] = ()
) -> str:
    """Ask WeCom to create one moment task for `senders`: its jobid (the moment comes later)."""
    payload: JsonDict = {
        "text": {"content": content},
        "visible_range": {"sender_list": {"user_list": list(senders)}},
    }
    if attachments:
        payload["attachments"] = list(attachments)
    data = client._api("POST", f"{EXTERNALCONTACT}/add_moment_task", payload)
    return required(data, "jobid", "add_moment_task")


def get_moment_task_result(client: WeComClient, jobid: str) -> MomentJobResult:
    """The state of a moment job: running, done (moment_id, refused senders) or failed."""
    data = client._api(
        "GET", f"{EXTERNALCONTACT}/get_moment_task_result", None, query={"jobid": jobid}
    )
    try:
        found = _job_result(data)
    except (AttributeError, TypeError, ValueError):
        found = None
    if found is None:
        raise ChannelTransient(
            f"get_moment_task_result {jobid}: an answer sopflow cannot read ({data!r:.120}); "
            "its rows stay `sending` and are polled again"
        )
    return found


def _job_result(data: JsonDict) -> MomentJobResult | None:
    """The answer read; None when it is not one sopflow can act on: an unknown status, a
    sender list that is not a list, or a done job naming no moment (nothing to record it by)."""
    result = data.get("result") or {}
    invalid = (result.get("invalid_sender_list") or {}).get("user_list") or []
    errcode = int(result.get("errcode") or 0)
    status = int(data.get("status") or JOB_RUNNING)
    if status not in (JOB_RUNNING, JOB_DONE, JOB_FAILED) or not isinstance(invalid, list):
        return None
    if status == JOB_DONE and errcode:
        status = JOB_FAILED
    moment_id = str(result.get("moment_id") or "")
    if status == JOB_DONE and not moment_id:
        return None
    return MomentJobResult(
        status=status,
        moment_id=moment_id,
        invalid_senders=tuple(str(u) for u in invalid if isinstance(u, str | int)),
        errcode=errcode,
        errmsg=str(result.get("errmsg") or ""),
    )


def iter_moment_list(
    client: WeComClient, start: dt.datetime, end: dt.datetime, limit: int = 20
) -> Iterator[JsonDict]:
    """The company's moments (filter_type 0: created by the company) created between two instants."""
    payload: JsonDict = {
        "start_time": int(start.timestamp()),
        "end_time": int(end.timestamp()),
        "filter_type": 0,
    }

    def fetch(cursor: str | None) -> JsonDict:
        return client._api(
            "POST", f"{EXTERNALCONTACT}/get_moment_list", _page(payload, cursor, limit)
        )

    return _pages(fetch, "moment_list")


def iter_moment_task(client: WeComClient, moment_id: str, limit: int = 1000) -> Iterator[JsonDict]:
    """Each sender of a moment with its publish_status (0 not posted yet, 1 posted)."""

    def fetch(cursor: str | None) -> JsonDict:
        payload = _page({"moment_id": moment_id}, cursor, limit)
        return client._api("POST", f"{EXTERNALCONTACT}/get_moment_task", payload)

    return _pages(fetch, "task_list")


def moment_attachments(
    attachments: Sequence[Attachment], media_id: Callable[[str, str], str]
) -> list[JsonDict]:
    """A step's rendered attachments as add_moment_task takes them: images and videos by media id
    (`media_id(path, kind)` uploads a local file once per 3 days), a link with title and URL."""
    shaped: list[JsonDict] = []
    for item in attachments:
        if item.kind in ("image", "video") and item.path:
            with uploads_before_the_call():
                uploaded = media_id(item.path, item.kind)
            shaped.append({"msgtype": item.kind, item.kind: {"media_id": uploaded}})
        elif item.kind == "link" and item.url:
            shaped.append({"msgtype": "link", "link": {"title": item.title or "", "url": item.url}})
        else:
            raise ChannelRejected(
                f"a moment takes images or a video from sop/media/ or one link, not {item.describe()}",
                errcode=41065,
            )
    return shaped
