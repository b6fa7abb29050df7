"""The real WeCom channel: cached access token, mass messages and their results on one `requests.Session`."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import requests
from pydantic import SecretStr

from channels.base import MassMessage, SendReceipt, check_message, max_targets
from channels.errcodes import OK, TOKEN_ERRCODES, error_for
from sopflow.errors import ChannelAuthError, ChannelRateLimited, ChannelRejected, ChannelTransient
from sopflow.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"
EXTERNALCONTACT = "/cgi-bin/externalcontact"
TOKEN_REFRESH_MARGIN = 60.0  # seconds: re-fetch a token that has less than this left
_QUERY = re.compile(r"\?[^\s'\"<>)\]]*")

JsonDict = dict[str, Any]


def strip_query(text: str) -> str:
    """`text` with every URL query string removed, so tokens and secrets in URLs never leak."""
    return _QUERY.sub("", text)


class _RedactQueryFilter(logging.Filter):
    """Strips query strings from urllib3's request log lines (they carry the token)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(strip_query(a) if isinstance(a, str) else a for a in record.args)
        return True


def _install_log_redaction() -> None:
    """Attach the redacting filter to urllib3's connection pool logger, once per process."""
    pool_logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactQueryFilter) for f in pool_logger.filters):
        pool_logger.addFilter(_RedactQueryFilter())


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float  # on the client's clock

    def __repr__(self) -> str:
        return f"_Token(expires_at={self.expires_at})"


class WeComClient:
    """WeCom server API client: `send_mass` via add_msg_template, plus delivery-result queries.

    Retries nothing except one token refresh on 40001/40014/42001; the caller's
    Prefect task retries `ChannelTransient` with backoff.
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.corp_id = corp_id
        self._secret = corp_secret if isinstance(corp_secret, SecretStr) else SecretStr(corp_secret)
        self.timeout = timeout
        self._own_session = session is None
        self._session = session or requests.Session()
        self._clock = clock
        self._token: _Token | None = None
        self._token_lock = threading.Lock()
        _install_log_redaction()

    @classmethod
    def from_settings(cls, settings: Settings) -> WeComClient:
        """A client configured from the run settings."""
        return cls(
            settings.wecom_api_base,
            settings.wecom_corp_id,
            settings.wecom_corp_secret,
            timeout=(settings.wecom_connect_timeout, settings.wecom_read_timeout),
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
        """Create a mass-message task (the sender still confirms it in the app)."""
        check_message(message)
        payload: JsonDict = {
            "chat_type": message.chat_type,
            "sender": message.sender,
            "text": {"content": message.content},
        }
        key = "chat_id_list" if message.chat_type == "group" else "external_userid"
        payload[key] = list(message.targets)
        data = self._api("POST", f"{EXTERNALCONTACT}/add_msg_template", payload)
        return SendReceipt(msgid=data.get("msgid"), fail_list=tuple(data.get("fail_list") or ()))

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

    def remind_groupmsg_send(self, msgid: str) -> None:
        """Remind the staff to confirm `msgid` (at most 3 times in 24 h, else 41094)."""
        self._api("POST", f"{EXTERNALCONTACT}/remind_groupmsg_send", {"msgid": msgid})

    def cancel_groupmsg_send(self, msgid: str) -> None:
        """Stop the unsent part of `msgid` (41093 when already cancelled)."""
        self._api("POST", f"{EXTERNALCONTACT}/cancel_groupmsg_send", {"msgid": msgid})

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
        self._raise_for_errcode("GET", "/cgi-bin/gettoken", data)
        value = data.get("access_token")
        if not isinstance(value, str) or not value:
            raise ChannelAuthError("GET /cgi-bin/gettoken: answer without an access_token")
        expires_in = float(data.get("expires_in") or 7200)
        logger.debug("fetched a WeCom access token valid for %.0f s", expires_in)
        return _Token(value=value, expires_at=self._clock() + expires_in)

    # -- HTTP --------------------------------------------------------------

    def _api(self, method: str, path: str, payload: JsonDict | None) -> JsonDict:
        """Call an API that needs the token; on a token errcode refresh once and retry once."""
        token = self.access_token()
        data = self._request(method, path, {"access_token": token}, payload)
        if _errcode(data) in TOKEN_ERRCODES:
            logger.info("WeCom refused the token (errcode %s); refreshing once", _errcode(data))
            self._forget_token(token)
            data = self._request(method, path, {"access_token": self.access_token()}, payload)
        self._raise_for_errcode(method, path, data)
        return data

    def _request(
        self, method: str, path: str, params: dict[str, str], payload: JsonDict | None
    ) -> JsonDict:
        """One HTTP exchange; transport failures and HTTP errors become `ChannelError`s."""
        body = None if payload is None else json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"} if body else None
        try:
            response = self._session.request(
                method, self.base_url + path, params=params, data=body, headers=headers,
                timeout=self.timeout,
            )  # fmt: skip
        except requests.Timeout as exc:
            raise ChannelTransient(f"{method} {path}: timed out: {self._redact(exc)}") from None
        except requests.RequestException as exc:
            raise ChannelTransient(
                f"{method} {path}: {type(exc).__name__}: {self._redact(exc)}"
            ) from None
        with response:
            return self._parse(method, path, response)

    def _parse(self, method: str, path: str, response: requests.Response) -> JsonDict:
        status = response.status_code
        where = f"{method} {path}: HTTP {status}"
        if status == 429:
            raise ChannelRateLimited(f"{where} (too many requests)", http_status=status)
        if status >= 500:
            raise ChannelTransient(where, http_status=status)
        if status >= 400:
            raise ChannelRejected(where, http_status=status)
        try:
            data = response.json()
        except ValueError:
            raise ChannelTransient(f"{where}: answer is not JSON", http_status=status) from None
        if not isinstance(data, dict):
            raise ChannelTransient(f"{where}: answer is not a JSON object", http_status=status)
        logger.debug("%s %s -> errcode %s", method, path, data.get("errcode", 0))
        return data

    def _raise_for_errcode(self, method: str, path: str, data: JsonDict) -> None:
        code = _errcode(data)
        if code != OK:
            errmsg = self._redact(str(data.get("errmsg", "")))
            raise error_for(code, f"{errmsg} [{method} {path}]".lstrip())

    def _redact(self, text: object) -> str:
        """`text` without URL query strings and without the secret or token values."""
        clean = strip_query(str(text))
        for secret in (self._secret.get_secret_value(), self._token.value if self._token else ""):
            if secret:
                clean = clean.replace(secret, "***")
        return clean


def _errcode(data: JsonDict) -> int:
    try:
        return int(data.get("errcode", OK))
    except (TypeError, ValueError):
        return -1


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
        yield from data.get(key) or []
        cursor = data.get("next_cursor") or None
        if cursor is None:
            return
