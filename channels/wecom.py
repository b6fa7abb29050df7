"""The real WeCom channel: cached access token, mass messages and their results on one `requests.Session`."""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial

import requests
from pydantic import SecretStr

from channels.attachments import Attachment
from channels.base import MassMessage, SendReceipt, max_targets
from channels.errcodes import TOKEN_ERRCODES
from channels.http import (
    JsonDict,
    errcode,
    install_log_redaction,
    raise_for_errcode,
    redactor,
    request_json,
    strip_query,
)
from channels.limiter import KeyedRateLimiter
from channels.wecom_attachments import send_mass_message, send_welcome
from core.errors import ChannelAuthError, ChannelTransient, ChannelUnreached
from core.settings import Settings

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_CALLS_PER_MINUTE", "WeComClient", "strip_query"]

EXTERNALCONTACT = "/cgi-bin/externalcontact"
TOKEN_REFRESH_MARGIN = 60.0  # seconds: re-fetch a token that has less than this left
DEFAULT_CALLS_PER_MINUTE = 2000  # per API; WeCom allows 10,000 per API per company
MAX_LIST_WINDOW = dt.timedelta(days=31)  # get_groupmsg_list_v2 refuses longer windows


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float  # on the client's clock

    def __repr__(self) -> str:
        return f"_Token(expires_at={self.expires_at})"


class WeComClient:
    """WeCom server API client: `send_mass` via add_msg_template, plus delivery-result queries.

    Retries nothing except one token refresh on 40001/40014/42001; the caller's
    Prefect task retries `ChannelTransient` with backoff. Every HTTP call first takes a
    slot of `limiter`, keyed by API path (default 2,000 calls per minute per API).
    """

    name = "wecom"

    def __init__(
        self,
        base_url: str,
        corp_id: str,
        corp_secret: str | SecretStr,
        *,
        timeout: tuple[float, float] = (3.05, 15.0),
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        limiter: KeyedRateLimiter | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.corp_id = corp_id
        self._secret = corp_secret if isinstance(corp_secret, SecretStr) else SecretStr(corp_secret)
        self.timeout = timeout
        self._own_session = session is None
        self._session = session or requests.Session()
        self._clock = clock
        self.limiter = limiter or KeyedRateLimiter(DEFAULT_CALLS_PER_MINUTE)
        self._token: _Token | None = None
        self._token_lock = threading.Lock()
        self._redact = redactor(self._secret_values)
        install_log_redaction()

    @classmethod
    def from_settings(cls, settings: Settings) -> WeComClient:
        """A client configured from the run settings."""
        return cls(
            settings.wecom_api_base,
            settings.wecom_corp_id,
            settings.wecom_corp_secret,
            timeout=(settings.wecom_connect_timeout, settings.wecom_read_timeout),
            limiter=KeyedRateLimiter(settings.wecom_calls_per_minute),
        )

    def __repr__(self) -> str:
        return f"WeComClient(base_url={self.base_url!r}, corp_id={self.corp_id!r})"

    def __enter__(self) -> WeComClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- Channel interface -------------------------------------------------

    def max_targets(self, chat_type: str) -> int:
        """2000 chat ids per group send, 10000 external_userids per single send."""
        return max_targets(chat_type)

    def send_mass(self, message: MassMessage) -> SendReceipt:
        """Create a mass-message task with its attachments (the sender still confirms it in the
        app); attachment files are uploaded once per 3 days (channels/wecom_attachments.py)."""
        return send_mass_message(self, f"{EXTERNALCONTACT}/add_msg_template", message)

    def close(self) -> None:
        """Close the HTTP session (when this client created it)."""
        if self._own_session:
            self._session.close()

    # -- Delivery results --------------------------------------------------

    def get_groupmsg_task(
        self, msgid: str, cursor: str | None = None, limit: int = 1000
    ) -> JsonDict:
        """One page of the staff tasks of `msgid`: `task_list` (userid, status 0/2) and `next_cursor`."""
        payload = _page({"msgid": msgid}, cursor, limit)
        return self._api("POST", f"{EXTERNALCONTACT}/get_groupmsg_task", payload)

    def iter_groupmsg_task(self, msgid: str, limit: int = 1000) -> Iterator[JsonDict]:
        """Every entry of `task_list` for `msgid`, following the cursor."""
        return _pages(partial(self.get_groupmsg_task, msgid, limit=limit), "task_list")

    def get_groupmsg_send_result(
        self, msgid: str, userid: str, cursor: str | None = None, limit: int = 1000
    ) -> JsonDict:
        """One page of per-target results of `userid`'s task: `send_list` and `next_cursor`.

        Status: 0 not sent, 1 sent, 2 not a friend, 3 over the customer's limit.
        """
        payload = _page({"msgid": msgid, "userid": userid}, cursor, limit)
        return self._api("POST", f"{EXTERNALCONTACT}/get_groupmsg_send_result", payload)

    def iter_groupmsg_send_result(
        self, msgid: str, userid: str, limit: int = 1000
    ) -> Iterator[JsonDict]:
        """Every entry of `send_list` for `userid`'s task of `msgid`, following the cursor."""
        fetch = partial(self.get_groupmsg_send_result, msgid, userid, limit=limit)
        return _pages(fetch, "send_list")

    def get_groupmsg_list_v2(
        self,
        chat_type: str,
        start_time: int,
        end_time: int,
        *,
        creator: str | None = None,
        filter_type: int = 2,
        cursor: str | None = None,
        limit: int = 100,
    ) -> JsonDict:
        """One page of mass messages created in [start_time, end_time] (unix seconds, ≤ 1 month)."""
        payload: JsonDict = {
            "chat_type": chat_type,
            "start_time": start_time,
            "end_time": end_time,
            "filter_type": filter_type,
        }
        if creator:
            payload["creator"] = creator
        payload = _page(payload, cursor, limit)
        return self._api("POST", f"{EXTERNALCONTACT}/get_groupmsg_list_v2", payload)

    def iter_groupmsg_list_v2(
        self,
        chat_type: str,
        start_time: int,
        end_time: int,
        *,
        creator: str | None = None,
        filter_type: int = 2,
        limit: int = 100,
    ) -> Iterator[JsonDict]:
        """Every entry of `group_msg_list` created in [start_time, end_time], following the cursor."""
        fetch = partial(
            self.get_groupmsg_list_v2,
            chat_type,
            start_time,
            end_time,
            creator=creator,
            filter_type=filter_type,
            limit=limit,
        )
        return _pages(fetch, "group_msg_list")

    def find_sent(
        self,
        sender: str,
        content: str,
        start: dt.datetime,
        end: dt.datetime,
        *,
        chat_type: str,
    ) -> list[JsonDict]:
        """The mass messages `sender` created in [start, end] whose text equals `content`.

        For reconciling a crashed dispatch: a chunk left in `sending` reached WeCom if a
        message with its sender and exact text was created while it was being sent. Each
        entry is a `group_msg_list` item (`msgid`, `creator`, `create_time`, `text` …).
        The window is widened to whole seconds and may span at most 31 days.
        """
        if end < start or end - start > MAX_LIST_WINDOW:
            raise ValueError("find_sent needs start <= end and a window of at most 31 days")
        messages = self.iter_groupmsg_list_v2(
            chat_type,
            math.floor(start.timestamp()),
            math.ceil(end.timestamp()),
            creator=sender,
        )
        return [m for m in messages if (m.get("text") or {}).get("content") == content]

    def remind_groupmsg_send(self, msgid: str) -> None:
        """Remind the staff to confirm `msgid` (at most 3 times in 24 h, else 41094)."""
        self._api("POST", f"{EXTERNALCONTACT}/remind_groupmsg_send", {"msgid": msgid})

    def cancel_groupmsg_send(self, msgid: str) -> None:
        """Stop the unsent part of `msgid` (41093 when already cancelled)."""
        self._api("POST", f"{EXTERNALCONTACT}/cancel_groupmsg_send", {"msgid": msgid})

    # -- Welcome messages --------------------------------------------------

    def send_welcome_msg(
        self, welcome_code: str, content: str, attachments: Sequence[Attachment] = ()
    ) -> None:
        """Send a new contact's welcome with the add event's WelcomeCode (valid 20 s, once; no
        staff confirmation). 41050 expired, 41051 another app sent first, 41096 already sending."""
        path = f"{EXTERNALCONTACT}/send_welcome_msg"
        send_welcome(self, path, welcome_code, content, attachments)

    # -- Directory (the contact sync) -------------------------------------

    def get_follow_user_list(self) -> list[str]:
        """The userids of the staff with the customer-contact feature (get_follow_user_list)."""
        data = self._api("GET", f"{EXTERNALCONTACT}/get_follow_user_list", None)
        return list(data.get("follow_user") or [])

    def get_external_contact(self, external_userid: str) -> JsonDict:
        """externalcontact/get: `external_contact` and every `follow_user` (its pages joined)."""
        query = {"external_userid": external_userid}
        data = self._api("GET", f"{EXTERNALCONTACT}/get", None, query)
        follows = list(data.get("follow_user") or [])
        while cursor := data.get("next_cursor"):
            data = self._api("GET", f"{EXTERNALCONTACT}/get", None, {**query, "cursor": cursor})
            follows += data.get("follow_user") or []
        return {**data, "follow_user": follows, "next_cursor": ""}

    def batch_get_by_user(
        self, userids: list[str], cursor: str | None = None, limit: int = 100
    ) -> JsonDict:
        """One page of batch/get_by_user (≤ 100 userids, limit ≤ 100): `external_contact_list`
        [{external_contact, follow_info}] and `next_cursor`."""
        payload = _page({"userid_list": userids}, cursor, limit)
        return self._api("POST", f"{EXTERNALCONTACT}/batch/get_by_user", payload)

    def groupchat_list(
        self, cursor: str | None = None, limit: int = 1000, status_filter: int = 0
    ) -> JsonDict:
        """One page of groupchat/list (every status by default): `group_chat_list` [{chat_id, status}]."""
        payload = _page({"status_filter": status_filter}, cursor, limit)
        return self._api("POST", f"{EXTERNALCONTACT}/groupchat/list", payload)

    def iter_groupchats(self, limit: int = 1000) -> Iterator[JsonDict]:
        """Every {chat_id, status} of groupchat/list, following the cursor."""
        return _pages(partial(self.groupchat_list, limit=limit), "group_chat_list")

    def get_group_chat(self, chat_id: str) -> JsonDict:
        """groupchat/get with member names: `group_chat` {name, owner, member_list, member_version …}."""
        payload = {"chat_id": chat_id, "need_name": 1}
        return self._api("POST", f"{EXTERNALCONTACT}/groupchat/get", payload)

    def get_corp_tag_list(self) -> list[JsonDict]:
        """Every corp tag group with its tags: [{group_id, group_name, tag: [{id, name}]}]."""
        data = self._api("POST", f"{EXTERNALCONTACT}/get_corp_tag_list", {})
        return list(data.get("tag_group") or [])

    def mark_tag(
        self, userid: str, external_userid: str, add: list[str], remove: list[str]
    ) -> None:
        """Add and remove corp tag ids on `userid`'s relation with a contact (one customer a call)."""
        payload = {"userid": userid, "external_userid": external_userid}
        payload |= {"add_tag": add, "remove_tag": remove}
        self._api("POST", f"{EXTERNALCONTACT}/mark_tag", payload)

    # -- Token -------------------------------------------------------------

    def access_token(self) -> str:
        """The cached token, fetched when absent or with less than 60 s left (thread-safe)."""
        with self._token_lock:
            token = self._token
            if token is None or token.expires_at - self._clock() < TOKEN_REFRESH_MARGIN:
                token = self._token = self._fetch_token()
            return token.value

    def invalidate_token(self) -> None:
        """Drop the cached token; the next call fetches a new one."""
        with self._token_lock:
            self._token = None

    def _forget_token(self, value: str) -> None:
        """Drop the cached token if it is still `value` (another thread may have refreshed it)."""
        with self._token_lock:
            if self._token is not None and self._token.value == value:
                self._token = None

    def _fetch_token(self) -> _Token:
        params = {"corpid": self.corp_id, "corpsecret": self._secret.get_secret_value()}
        data = self._request("GET", "/cgi-bin/gettoken", params, None)
        raise_for_errcode("GET", "/cgi-bin/gettoken", data, self._redact)
        value = data.get("access_token")
        if not isinstance(value, str) or not value:
            raise ChannelAuthError("GET /cgi-bin/gettoken: answer without an access_token")
        expires_in = float(data.get("expires_in") or 7200)
        logger.debug("fetched a WeCom access token valid for %.0f s", expires_in)
        return _Token(value=value, expires_at=self._clock() + expires_in)

    # -- HTTP --------------------------------------------------------------

    def _api(
        self, method: str, path: str, payload: JsonDict | None, query: dict[str, str] | None = None
    ) -> JsonDict:
        """Call an API that needs the token; on a token errcode refresh once and retry once."""
        token = self._token_for(path)
        data = self._request(method, path, {"access_token": token, **(query or {})}, payload)
        if errcode(data) in TOKEN_ERRCODES:
            logger.info("WeCom refused the token (errcode %s); refreshing once", errcode(data))
            self._forget_token(token)
            params = {"access_token": self._token_for(path), **(query or {})}
            data = self._request(method, path, params, payload)
        raise_for_errcode(method, path, data, self._redact)
        return data

    def _token_for(self, path: str) -> str:
        """The access token for a call to `path`; a failure to get one means the call never left."""
        try:
            return self.access_token()
        except ChannelUnreached:
            raise
        except ChannelTransient as error:
            raise ChannelUnreached(
                f"no access token, {path} not called: {error}",
                errcode=error.errcode,
                http_status=error.http_status,
            ) from None

    def _request(
        self, method: str, path: str, params: dict[str, str], payload: JsonDict | None
    ) -> JsonDict:
        """One HTTP exchange, after taking a slot of this API's rate limit."""
        self.limiter.acquire(path)
        return request_json(
            self._session, method, self.base_url, path,
            params=params, payload=payload, timeout=self.timeout, redact=self._redact,
        )  # fmt: skip

    def _secret_values(self) -> tuple[str, str]:
        """The values never to show: the corp secret and the current token."""
        token = self._token
        return self._secret.get_secret_value(), token.value if token else ""


def _page(payload: JsonDict, cursor: str | None, limit: int) -> JsonDict:
    """`payload` with the paging fields WeCom expects."""
    paged = {**payload, "limit": limit}
    if cursor:
        paged["cursor"] = cursor
    return paged


def _pages(fetch: Callable[..., JsonDict], key: str) -> Iterator[JsonDict]:
    """Yield every item under `key` across pages, following `next_cursor` until it is empty."""
    cursor: str | None = None
    while True:
        data = fetch(cursor=cursor)
        items = data.get(key) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ChannelTransient(f"WeCom's `{key}` is not a list of objects: {items!r:.60}")
        yield from items
        cursor = str(data.get("next_cursor") or "") or None
        if cursor is None:
            return
