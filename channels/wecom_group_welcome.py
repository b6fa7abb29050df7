"""The group welcome template in WeCom (`externalcontact/group_welcome_template/add|edit|get|del`)."""

from __future__ import annotations

from channels.attachments import Attachment, check_attachments
from channels.http import JsonDict, required
from channels.media import media_files
from channels.wecom import EXTERNALCONTACT, WeComClient
from channels.wecom_attachments import (
    attachment_json,
    in_operator_words,
    uploads_before_the_call,
)

TEMPLATE = f"{EXTERNALCONTACT}/group_welcome_template"


def template_body(client: WeComClient, text: str, attachment: Attachment | None) -> JsonDict:
    """The template as WeCom takes it: `text` and at most one of image/link/miniprogram. An
    image from a file goes up with uploadimg, since a template's picture must outlive 3 days."""
    body: JsonDict = {"text": {"content": text}}
    if attachment is None:
        return body
    check_attachments([attachment])
    media = media_files(client)
    with uploads_before_the_call():
        if attachment.kind == "image" and attachment.path:
            body["image"] = {"pic_url": media.picture_url(attachment.path)}
        else:
            body[attachment.kind] = attachment_json(attachment, media)[attachment.kind]
    return body


def add_template(
    client: WeComClient, text: str, attachment: Attachment | None, *, notify: bool = False
) -> str:
    """Add the template; its template_id. `notify`: WeCom asks the group owners to use it."""
    with in_operator_words():
        body = {**template_body(client, text, attachment), "notify": int(notify)}
        data = client._api("POST", f"{TEMPLATE}/add", body)
    return required(data, "template_id", "group_welcome_template/add")


def edit_template(
    client: WeComClient, template_id: str, text: str, attachment: Attachment | None
) -> None:
    """Replace the template's content (groups using it get the new words at once)."""
    with in_operator_words():
        body = {"template_id": template_id, **template_body(client, text, attachment)}
        client._api("POST", f"{TEMPLATE}/edit", body)


def get_template(client: WeComClient, template_id: str) -> JsonDict:
    """The template as WeCom holds it: `text` and its attachment."""
    return client._api("POST", f"{TEMPLATE}/get", {"template_id": template_id})


def del_template(client: WeComClient, template_id: str) -> None:
    """Delete a template sopflow added (WeCom lets an app delete only its own)."""
    client._api("POST", f"{TEMPLATE}/del", {"template_id": template_id})
