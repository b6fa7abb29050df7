"""JSON-over-HTTP helpers shared by the WeCom clients: one exchange, errcode checks, secret redaction."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import requests
from urllib3.exceptions import NewConnectionError

from channels.errcodes import OK, error_for
from core.errors import ChannelRateLimited, ChannelRejected, ChannelTransient, ChannelUnreached

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]
Redact = Callable[[object], str]
_QUERY = re.compile(r"\?[^\s'\"<>)\]]*")


def strip_query(text: str) -> str:
    """`text` with every URL query string removed, so tokens, secrets and keys in URLs never leak."""
    return _QUERY.sub("", text)


def redactor(secrets: Callable[[], Iterable[str]]) -> Redact:
    """A function that strips query strings and masks every current value of `secrets()`."""

    def redact(text: object) -> str:
        clean = strip_query(str(text))
        for secret in secrets():
            if secret:
                clean = clean.replace(secret, "***")
        return clean

    return redact


class _RedactQueryFilter(logging.Filter):
    """Strips query strings from urllib3's request log lines (they carry tokens and keys)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(strip_query(a) if isinstance(a, str) else a for a in record.args)
        return True


def install_log_redaction() -> None:
    """Attach the redacting filter to urllib3's connection pool logger, once per process."""
    pool_logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactQueryFilter) for f in pool_logger.filters):
        pool_logger.addFilter(_RedactQueryFilter())


def request_json(
    session: requests.Session,
    method: str,
    url: str,
    path: str,
    *,
    params: dict[str, str],
    payload: JsonDict | None,
    timeout: tuple[float, float],
    redact: Redact,
    files: dict[str, tuple[str, bytes, str]] | None = None,
) -> JsonDict:
    """One HTTP exchange with `url + path` (a JSON body, or multipart `files`); transport
    failures and HTTP errors become `ChannelError`s."""
    body = None if payload is None else json.dumps(payload, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8"} if body else None
    try:
        response = session.request(
            method, url + path, params=params, data=body, headers=headers, timeout=timeout,
            files=files,
        )  # fmt: skip
    except requests.RequestException as exc:
        if never_connected(exc):
            why = redact(connect_failure(exc))
            raise ChannelUnreached(f"{method} {path}: not sent, could not connect: {why}") from None
        if isinstance(exc, requests.Timeout):
            raise ChannelTransient(f"{method} {path}: timed out: {redact(exc)}") from None
        raise ChannelTransient(f"{method} {path}: {type(exc).__name__}: {redact(exc)}") from None
    with response:
        return _parse(method, path, response)


def never_connected(error: requests.RequestException) -> bool:
    """Whether the connection was never made (refused, unresolved host, connect timeout, bad
    URL), so nothing was sent.

    A connection dropped after the request was written ("Connection aborted") is not such a
    failure: WeCom may have acted on the request without answering.
    """
    if isinstance(error, requests.ConnectTimeout | requests.exceptions.InvalidURL):
        return True
    return isinstance(error, requests.ConnectionError) and isinstance(
        _reason(error), NewConnectionError
    )


def connect_failure(error: requests.RequestException) -> str:
    """Why the connection failed, without urllib3's pool and connection reprs."""
    text = str(_reason(error) or error)
    return text.rsplit("): ", 1)[-1].strip("'\"")


def _reason(error: requests.RequestException) -> object:
    return getattr(error.args[0], "reason", None) if error.args else None


def _parse(method: str, path: str, response: requests.Response) -> JsonDict:
    status = response.status_code
    where = f"{method} {path}: HTTP {status}"
    if status == 429:
        raise ChannelRateLimited(f"{where} (too many requests)", http_status=status)
    if status >= 500:
        raise ChannelTransient(where, http_status=status)
    if status >= 400:
        raise ChannelRejected(where, http_status=status)
    try:
        data = _json(response)
    except ValueError:
        raise ChannelTransient(f"{where}: answer is not JSON", http_status=status) from None
    if not isinstance(data, dict):
        raise ChannelTransient(f"{where}: answer is not a JSON object", http_status=status)
    logger.debug("%s %s -> errcode %s", method, path, data.get("errcode", 0))
    return data


def _json(response: requests.Response) -> Any:
    """The body as JSON: orjson on the UTF-8 WeCom sends (a directory page of 100 contacts
    decodes ~3x faster), requests' own decoding for anything orjson refuses."""
    try:
        return orjson.loads(response.content)
    except ValueError:
        return response.json()


def errcode(data: JsonDict) -> int:
    """The answer's errcode (0 when absent; −1 when it is not a number)."""
    try:
        return int(data.get("errcode", OK))
    except (TypeError, ValueError):
        return -1


def raise_for_errcode(method: str, path: str, data: JsonDict, redact: Redact) -> None:
    """Raise the mapped `ChannelError` when the answer carries a nonzero errcode."""
    code = errcode(data)
    if code != OK:
        errmsg = redact(str(data.get("errmsg", "")))
        raise error_for(code, f"{errmsg} [{method} {path}]".lstrip())


def required(data: JsonDict, name: str, where: str) -> str:
    """The answer's `name` as text; an ok answer without it is treated as no answer at all
    (`ChannelTransient`, no errcode): the call may have acted, so callers reconcile, never resend."""
    value = data.get(name)
    if value is None or isinstance(value, dict | list) or not str(value).strip():
        raise ChannelTransient(
            f"{where}: WeCom answered ok without a usable `{name}` ({value!r:.40}); "
            "treated as no answer"
        )
    return str(value)
