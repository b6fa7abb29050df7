"""Attachments on the wire: a message's attachments as WeCom's `attachments` JSON (files uploaded
as media first), and WeCom's refusals of them in words an operator understands."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from channels.attachments import Attachment, check_attachments
from channels.base import MassMessage, SendReceipt, check_message
from channels.http import JsonDict
from channels.media import MediaFiles, media_files
from core.errors import ChannelRejected, ChannelTransient, ChannelUnreached

if TYPE_CHECKING:
    from channels.wecom import WeComClient

INVALID_MEDIA = 40007
# errcode -> what an operator reads first in a failed touch's reason (then the errcode, then WeCom's words).
LABELS: dict[int, str] = {
    41064: "附件过多 too many attachments",
    41065: "附件类型或字段不对 bad attachment",
    45002: "内容过长 content too long",
    90206: "小程序未关联企业 mini-program not linked to the company",
    40007: "附件素材无效或已过期 media expired",
    40004: "附件文件类型不对 bad file type",
    40006: "附件文件大小不对 bad file size",
}
_URL = re.compile(r"^https?://", re.IGNORECASE)


def attachment_json(item: Attachment, media: MediaFiles) -> JsonDict:
    """One attachment as WeCom's JSON; local files become media ids (or, for a link's
    picture, a permanent uploadimg URL)."""
    if item.kind == "image":
        if item.path:
            return {"msgtype": "image", "image": {"media_id": media.media_id(item.path, "image")}}
        return {"msgtype": "image", "image": {"pic_url": item.url}}
    if item.kind == "link":
        link = {"title": item.title, "url": item.url, "desc": item.description}
        if item.picture:
            is_url = _URL.match(item.picture)
            link["picurl"] = item.picture if is_url else media.picture_url(item.picture)
        return {"msgtype": "link", "link": {k: v for k, v in link.items() if v}}
    if item.kind == "miniprogram":
        cover = media.media_id(item.picture or "", "image")
        card = {"title": item.title, "pic_media_id": cover, "appid": item.appid, "page": item.page}
        return {"msgtype": "miniprogram", "miniprogram": card}
    return {
        "msgtype": item.kind,
        item.kind: {"media_id": media.media_id(item.path or "", item.kind)},
    }


def attachments_json(attachments: Sequence[Attachment], media: MediaFiles) -> list[JsonDict]:
    """The message's attachments as WeCom's `attachments` list, in order."""
    with uploads_before_the_call():
        return [attachment_json(item, media) for item in attachments]


@contextmanager
def uploads_before_the_call() -> Iterator[None]:
    """An upload that got no answer raises `ChannelUnreached`: the call the upload was for
    never left, so its touches are not `sending` (nor a template possibly added)."""
    try:
        yield
    except ChannelTransient as error:
        if isinstance(error, ChannelUnreached) or error.errcode or error.http_status:
            raise
        raise ChannelUnreached(
            f"not sent: uploading its attachment got no answer ({error}); the next run sends it"
        ) from None


def labelled(error: ChannelRejected) -> ChannelRejected:
    """The same refusal, its reason starting with the operator's words: `附件过多 … (41064): …`."""
    label = LABELS.get(error.errcode or 0)
    if label is None or str(error).startswith(label):
        return error
    return type(error)(
        f"{label} ({error.errcode}): {error}", errcode=error.errcode, http_status=error.http_status
    )


@contextmanager
def in_operator_words() -> Iterator[None]:
    """Re-raise an attachment refusal with its label (see `labelled`)."""
    try:
        yield
    except ChannelRejected as error:
        raise labelled(error) from None


def call_with_attachments(
    client: WeComClient, path: str, payload: JsonDict, attachments: Sequence[Attachment]
) -> JsonDict:
    """POST `payload` plus its attachments to `path`. When WeCom answers 40007 (a media id it no
    longer knows) the files are uploaded again and the call made once more: a refused call
    created nothing, so nothing is sent twice."""
    with in_operator_words():
        check_attachments(attachments)
        if not attachments:
            return client._api("POST", path, payload)
        media = media_files(client)
        try:
            return client._api(
                "POST", path, {**payload, "attachments": attachments_json(attachments, media)}
            )
        except ChannelRejected as error:
            if error.errcode != INVALID_MEDIA:
                raise
        for item in attachments:
            if item.kind == "miniprogram" and item.picture:
                media.forget(item.picture, "image")
            elif item.kind != "link" and item.path:
                media.forget(item.path, item.kind)
        return client._api(
            "POST", path, {**payload, "attachments": attachments_json(attachments, media)}
        )


def send_mass_message(client: WeComClient, path: str, message: MassMessage) -> SendReceipt:
    """add_msg_template for `message`: its text, targets and attachments."""
    with in_operator_words():
        check_message(message)
    payload: JsonDict = {
        "chat_type": message.chat_type,
        "sender": message.sender,
        "text": {"content": message.content},
    }
    key = "chat_id_list" if message.chat_type == "group" else "external_userid"
    payload[key] = list(message.targets)
    data = call_with_attachments(client, path, payload, message.attachments)
    return SendReceipt(msgid=data.get("msgid"), fail_list=tuple(data.get("fail_list") or ()))


def send_welcome(
    client: WeComClient, path: str, code: str, content: str, attachments: Sequence[Attachment] = ()
) -> None:
    """send_welcome_msg with the add event's code: text plus up to 9 attachments."""
    with in_operator_words():
        check_message(MassMessage("single", "", (code,), content))
    payload: JsonDict = {"welcome_code": code, "text": {"content": content}}
    call_with_attachments(client, path, payload, attachments)
