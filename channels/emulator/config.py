"""The emulator's settings (`EmulatorConfig`), WeCom's limits it enforces, and `ApiError`."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from channels.errcodes import meaning

JsonDict = dict[str, Any]
EXTERNALCONTACT = "/cgi-bin/externalcontact/"
GETTOKEN = "/cgi-bin/gettoken"
WEBHOOK = "/cgi-bin/webhook/send"
MAX_PAGE = 1000
MAX_LIST_PAGE = 100
MAX_ATTACHMENTS = 9
MAX_LIST_WINDOW = 31 * 86400
REMIND_WINDOW = 86400
RATE_WINDOW = 60.0  # seconds: calls per minute are counted over a sliding minute
MAX_ROBOT_TEXT_BYTES = 2048
MAX_ROBOT_MARKDOWN_BYTES = 4096
LOCAL_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")  # caps count local days
CREDENTIALS = ("corp_id", "corp_secret")  # always from the constructor, never persisted


@dataclass
class EmulatorConfig:
    """How the emulator behaves; every field can be changed at run time via POST /emulator/config."""

    corp_id: str | None = None  # when set, gettoken checks corpid (40013)
    corp_secret: str | None = None  # when set, gettoken checks corpsecret (40001)
    token_ttl: float = 7200.0  # seconds a token lives; then 42001
    confirm_share: float = 1.0  # share of (msgid, sender) tasks the staff member confirms
    confirm_delay_seconds: float = 0.0  # seconds after creation a confirming sender confirms
    dispatch_seconds: float = 0.0  # result APIs answer 41063 this long after creation
    # errcodes (or {"errcode", "path"}) to answer next
    fail_next: list[Any] = field(default_factory=list)
    http_500_next: int = 0  # answer the next n API calls with HTTP 500
    lose_answer_next: int = 0  # carry out the next n API calls, then drop the connection
    delay_seconds: float = 0.0  # sleep before answering every API call
    delay_jitter_seconds: float = 0.0  # plus a random 0..jitter seconds
    delay_paths: list[str] = field(default_factory=list)  # only paths ending so (empty: all)
    rate_limit_per_minute: int | None = None  # calls per API per sliding minute; more → 45009
    max_concurrent: int | None = None  # requests in flight per API; more → 45033
    deleted_ids: list[str] = field(default_factory=list)  # in fail_list; status 2 in results
    unknown_ids: list[str] = field(default_factory=list)  # in fail_list; absent from results
    capped_ids: list[str] = field(default_factory=list)  # status 3 (over the customer's limit)
    # Mass messages a customer receives per local day / ISO week / month; more → status 3.
    customer_cap_day: int | None = None
    customer_cap_week: int | None = None
    customer_cap_month: int | None = None
    remind_limit: int = 3  # reminders per msgid in 24 h; more → 41094
    robot_keys: list[str] | None = None  # valid webhook keys (None: any); others → 93000
    robot_disabled_keys: list[str] = field(default_factory=list)  # → 93004
    robot_per_minute: int | None = 20  # posts per robot per sliding minute; more → 45009
    # Mini-program appids linked to the company (None: any); an attachment with another → 90206.
    linked_appids: list[str] | None = None
    # Moments (channels/emulator/moments.py): who posts their task (None: everyone), how many
    # polls a job answers "running" first, and senders WeCom refuses (invalid_sender_list).
    moment_posters: list[str] | None = None
    moment_running_polls: int = 0
    moment_invalid_senders: list[str] = field(default_factory=list)

    def merged(self, changes: JsonDict) -> EmulatorConfig:
        """A copy with `changes` applied; unknown keys raise `KeyError`."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise KeyError(f"unknown config keys: {', '.join(unknown)}")
        return dataclasses.replace(copy.deepcopy(self), **copy.deepcopy(changes))

    def restored(self, saved: JsonDict) -> EmulatorConfig:
        """A copy with a persisted config applied; credentials and keys this version lacks are ignored."""
        names = {f.name for f in dataclasses.fields(self)} - set(CREDENTIALS)
        return self.merged({key: value for key, value in saved.items() if key in names})

    def persisted(self) -> JsonDict:
        """The config as JSON to persist: everything but the corp id and secret."""
        data = dataclasses.asdict(self)
        for name in CREDENTIALS:
            data.pop(name)
        return data

    def public(self) -> JsonDict:
        """The config as JSON, with the corp secret masked."""
        data = dataclasses.asdict(self)
        if data["corp_secret"]:
            data["corp_secret"] = "***"
        return data

    def caps(self) -> dict[str, int]:
        """The per-customer caps in force, by period (`day`, `week`, `month`)."""
        caps = {
            "day": self.customer_cap_day,
            "week": self.customer_cap_week,
            "month": self.customer_cap_month,
        }
        return {period: cap for period, cap in caps.items() if cap is not None}


class ApiError(Exception):
    """An answer with a nonzero errcode (HTTP 200, as WeCom does)."""

    def __init__(self, errcode: int, errmsg: str | None = None):
        super().__init__(errcode)
        self.errcode = errcode
        self.errmsg = errmsg or meaning(errcode)
