"""Group-robot webhook channel for internal staff groups: text and markdown, 20 posts a minute per robot."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import requests
from pydantic import SecretStr

from channels.base import ERRCODE_EMPTY_TEXT
from channels.http import (
    JsonDict,
    install_log_redaction,
    raise_for_errcode,
    redactor,
    request_json,
)
from channels.limiter import KeyedRateLimiter
from core.errors import ChannelRejected
from core.settings import Settings

WEBHOOK_PATH = "/cgi-bin/webhook/send"
ROBOT_PER_MINUTE = 20  # WeCom's limit per robot
MAX_TEXT_BYTES = 2048
MAX_MARKDOWN_BYTES = 4096
ERRCODE_INVALID_PARAMETER = 40058  # what WeCom answers for over-long robot content

__all__ = ["RobotChannel", "parse_robot_keys"]


def parse_robot_keys(raw: SecretStr) -> dict[str, SecretStr]:
    """Robot name -> webhook key from the JSON object in `raw`; errors never quote the value."""
    try:
        data = json.loads(raw.get_secret_value() or "{}")
    except ValueError:
        raise ValueError("SOPFLOW_ROBOT_KEYS is not valid JSON") from None
    if not isinstance(data, dict) or not all(
        isinstance(name, str) and isinstance(key, str) and key for name, key in data.items()
    ):
        raise ValueError("SOPFLOW_ROBOT_KEYS must be a JSON object of robot name to webhook key")
    return {name: SecretStr(key) for name, key in data.items()}


class RobotChannel:
    """Posts to WeCom group robots named in the settings; keys stay secret.

    `key_name` is the robot's name in `SOPFLOW_ROBOT_KEYS` (e.g. `ops-bj`), never the
    key itself. Each robot has its own limiter: a post waits (sleeps) until it is
    within `per_minute` posts in any 60 s, so WeCom's 20/min is never exceeded from
    this process. Errors raise `ChannelError`s as `channels.errcodes` maps them
    (93000 bad key, 93004 robot disabled, 93008 robot not in the group, 45009 …).
    """

    name = "robot"

    def __init__(
        self,
        base_url: str,
        keys: Mapping[str, str | SecretStr],
        *,
        timeout: tuple[float, float] = (3.05, 15.0),
        session: requests.Session | None = None,
        limiter: KeyedRateLimiter | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._keys = {name: SecretStr(_plain(key)) for name, key in keys.items()}
        self.timeout = timeout
        self._own_session = session is None
        self._session = session or requests.Session()
        self.limiter = limiter or KeyedRateLimiter(ROBOT_PER_MINUTE)
        self._redact = redactor(lambda: [key.get_secret_value() for key in self._keys.values()])
        install_log_redaction()

    @classmethod
    def from_settings(cls, settings: Settings) -> RobotChannel:
        """A robot channel on `WECOM_API_BASE` with the keys of `SOPFLOW_ROBOT_KEYS`."""
        return cls(
            settings.wecom_api_base,
            parse_robot_keys(settings.robot_keys),
            timeout=(settings.wecom_connect_timeout, settings.wecom_read_timeout),
            limiter=KeyedRateLimiter(settings.robot_per_minute),
        )

    def __repr__(self) -> str:
        return f"RobotChannel(base_url={self.base_url!r}, robots={sorted(self._keys)!r})"

    def __enter__(self) -> RobotChannel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def robots(self) -> list[str]:
        """The configured robot names."""
        return sorted(self._keys)

    def post_text(
        self,
        key_name: str,
        content: str,
        *,
        mentioned_list: Sequence[str] = (),
        mentioned_mobile_list: Sequence[str] = (),
    ) -> None:
        """Post plain text (≤ 2048 bytes), optionally @-mentioning userids or mobiles ("@all")."""
        _check_content("text", content, MAX_TEXT_BYTES)
        text: JsonDict = {"content": content}
        if mentioned_list:
            text["mentioned_list"] = list(mentioned_list)
        if mentioned_mobile_list:
            text["mentioned_mobile_list"] = list(mentioned_mobile_list)
        self._post(key_name, {"msgtype": "text", "text": text})

    def post_markdown(self, key_name: str, content: str) -> None:
        """Post WeCom markdown (≤ 4096 bytes): headings, bold, links, quotes, `<font color>`."""
        _check_content("markdown", content, MAX_MARKDOWN_BYTES)
        self._post(key_name, {"msgtype": "markdown", "markdown": {"content": content}})

    def close(self) -> None:
        """Close the HTTP session (when this channel created it)."""
        if self._own_session:
            self._session.close()

    def _post(self, key_name: str, payload: JsonDict) -> None:
        key = self._keys.get(key_name)
        if key is None:
            raise ChannelRejected(f"no webhook key configured for robot {key_name!r}")
        self.limiter.acquire(key_name)
        data = request_json(
            self._session, "POST", self.base_url, WEBHOOK_PATH,
            params={"key": key.get_secret_value()}, payload=payload,
            timeout=self.timeout, redact=self._redact,
        )  # fmt: skip
        raise_for_errcode("POST", f"{WEBHOOK_PATH} ({key_name})", data, self._redact)


def _plain(key: str | SecretStr) -> str:
    return key.get_secret_value() if isinstance(key, SecretStr) else key


def _check_content(msgtype: str, content: str, limit: int) -> None:
    """Refuse, before any call, empty or over-long robot content."""
    if not content.strip():
        raise ChannelRejected(
            f"refused before posting: empty {msgtype}", errcode=ERRCODE_EMPTY_TEXT
        )
    size = len(content.encode("utf-8"))
    if size > limit:
        raise ChannelRejected(
            f"refused before posting: {msgtype} is {size} bytes, at most {limit} (UTF-8)",
            errcode=ERRCODE_INVALID_PARAMETER,
        )
