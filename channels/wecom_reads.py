"""The directory reads the callback receiver needs: one external contact, one group chat."""

from __future__ import annotations

from typing import Any

from channels.errcodes import TOKEN_ERRCODES
from channels.http import JsonDict, errcode, raise_for_errcode
from channels.wecom import EXTERNALCONTACT, WeComClient

CONTACT_GET = f"{EXTERNALCONTACT}/get"
GROUPCHAT_GET = f"{EXTERNALCONTACT}/groupchat/get"


def _call(
    client: WeComClient, method: str, path: str, query: dict[str, str], payload: JsonDict | None
) -> JsonDict:
    """`client._api` with extra query parameters (externalcontact/get is a GET with its id in
    the query): one token refresh on a token errcode, the same limiter key per API."""
    token = client._token_for(path)
    data = client._request(method, path, {"access_token": token, **query}, payload)
    if errcode(data) in TOKEN_ERRCODES:
        client._forget_token(token)
        data = client._request(
            method, path, {"access_token": client._token_for(path), **query}, payload
        )
    raise_for_errcode(method, path, data, client._redact)
    return data


def get_external_contact(client: WeComClient, external_userid: str) -> JsonDict:
    """externalcontact/get: `external_contact` {name, gender, …} and `follow_user` [{userid,
    createtime, state, remark, …}]; the directory sync's client method when it has one."""
    own: Any = getattr(client, "get_external_contact", None)
    if callable(own):
        return dict(own(external_userid))
    return _call(client, "GET", CONTACT_GET, {"external_userid": external_userid}, None)


def get_group_chat(client: WeComClient, chat_id: str) -> JsonDict:
    """groupchat/get: `group_chat` {chat_id, name, owner, create_time, member_list[…]}."""
    own: Any = getattr(client, "get_group_chat", None)
    if callable(own):
        return dict(own(chat_id))
    return _call(client, "POST", GROUPCHAT_GET, {}, {"chat_id": chat_id, "need_name": 1})
