"""Run settings, read once from the environment (and `.env`) into one object."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Everything a run can be configured with; the environment wins over `.env`."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / '.data' / 'sopflow.db'}",
        alias="SOPFLOW_DATABASE_URL",
    )
    sop_dir: Path = Field(default=PROJECT_ROOT / "sop", alias="SOPFLOW_SOP_DIR")
    data_dir: Path = Field(default=PROJECT_ROOT / ".data", alias="SOPFLOW_DATA_DIR")
    timezone: str = Field(default="Asia/Shanghai", alias="SOPFLOW_TIMEZONE")
    # Review (复盘) HTML reports are written here; targets are read from `sop_dir / targets.yaml`.
    reports_dir: Path = Field(default=PROJECT_ROOT / "reports", alias="SOPFLOW_REPORTS_DIR")

    # How long a SQLite writer waits for another process's write lock before giving up.
    sqlite_busy_seconds: float = Field(default=60.0, alias="SOPFLOW_SQLITE_BUSY_SECONDS", gt=0)

    # Delivery channel for customer and group mass messages.
    channel: Literal["outbox", "wecom"] = Field(default="outbox", alias="SOPFLOW_CHANNEL")
    wecom_api_base: str = Field(default="https://qyapi.weixin.qq.com", alias="WECOM_API_BASE")
    wecom_corp_id: str = Field(default="", alias="WECOM_CORP_ID")
    wecom_corp_secret: SecretStr = Field(default=SecretStr(""), alias="WECOM_CORP_SECRET")
    wecom_connect_timeout: float = Field(default=3.05, alias="WECOM_CONNECT_TIMEOUT")
    wecom_read_timeout: float = Field(default=15.0, alias="WECOM_READ_TIMEOUT")
    # The callback receiver (`sopflow callback`): the Token and EncodingAESKey (43 characters) set
    # with the callback URL in WeCom's admin console; messages are checked against wecom_corp_id.
    wecom_callback_token: SecretStr = Field(default=SecretStr(""), alias="WECOM_CALLBACK_TOKEN")
    wecom_callback_aes_key: SecretStr = Field(default=SecretStr(""), alias="WECOM_CALLBACK_AES_KEY")

    # Audience streaming: recipients per Prefect task run. A 1:1 batch is written in one
    # transaction that rewrites most pages of the delivery key index, so fewer, larger batches
    # write less (1,000,000 customers: 10 batches, two in memory at a time).
    batch_size: int = Field(default=100_000, alias="SOPFLOW_BATCH_SIZE", ge=1)
    # One occurrence, many workers (flows/partitioned.py): above 1 its batches and sender buckets
    # become partitions in the database that this many runners (the occurrence's run and child
    # runs of the `partition-runner` deployment) claim under a lease; 1 keeps the one-process path.
    occurrence_workers: int = Field(default=1, alias="SOPFLOW_OCCURRENCE_WORKERS", ge=1)
    partition_lease_seconds: float = Field(
        default=60.0, alias="SOPFLOW_PARTITION_LEASE_SECONDS", gt=0
    )

    # Restraint (克制): quiet hours and frequency caps, shared by every SOP (engine/guard.py, engine/caps.py, engine/reservations.py).
    # Quiet hours are local time in `timezone`; a window may wrap midnight (22:00-08:00) and
    # start == end disables it. 1:1 touches in quiet hours wait for `quiet_end`; group touches are skipped.
    quiet_start: dt.time = Field(default=dt.time(22, 0), alias="SOPFLOW_QUIET_START")
    quiet_end: dt.time = Field(default=dt.time(8, 0), alias="SOPFLOW_QUIET_END")
    # Marketing touches per customer per local day, and per 30 local days ending today. 4/30 days is
    # WeCom's older monthly rule (4 mass messages per customer per month); the current official rule
    # allows one a day (up to the month's days), and admins may set e.g. 7 a week or 1 a day instead.
    cap_customer_day: int = Field(default=1, alias="SOPFLOW_CAP_CUSTOMER_DAY", ge=0)
    cap_customer_30d: int = Field(default=4, alias="SOPFLOW_CAP_CUSTOMER_30D", ge=0)
    # Marketing touches per customer group per local day.
    cap_group_day: int = Field(default=3, alias="SOPFLOW_CAP_GROUP_DAY", ge=0)

    # Channel-side call limits and group robots (channels/limiter.py, channels/robot.py).
    # Calls per minute per WeCom API from this process; WeCom allows 10,000 per company.
    wecom_calls_per_minute: int = Field(default=2000, alias="WECOM_CALLS_PER_MINUTE", ge=1)
    # Slots of the `wecom-api` global concurrency limit (channels open at once across every
    # worker); unset: 10,000 // WECOM_CALLS_PER_MINUTE, so their paces add up to WeCom's limit.
    wecom_call_slots: int | None = Field(default=None, alias="WECOM_CALL_SLOTS", ge=1)
    # JSON object of robot name -> webhook key, e.g. {"ops-bj": "KEY"}; a secret as a whole.
    robot_keys: SecretStr = Field(default=SecretStr("{}"), alias="SOPFLOW_ROBOT_KEYS")
    robot_per_minute: int = Field(default=20, alias="SOPFLOW_ROBOT_PER_MINUTE", ge=1, le=20)

    # Send results (tasks/results.py): remind staff who have not confirmed a mass message after
    # this long, give up on it (rows become `unconfirmed`) after this long, look back this far.
    remind_after_minutes: int = Field(default=120, alias="SOPFLOW_REMIND_AFTER_MINUTES", ge=1)
    unconfirmed_after_hours: int = Field(default=24, alias="SOPFLOW_UNCONFIRMED_AFTER_HOURS", ge=1)
    results_lookback_days: int = Field(default=3, alias="SOPFLOW_RESULTS_LOOKBACK_DAYS", ge=1)

    # Operator approval (tasks/approval.py): a paused run not answered within this long is
    # treated as not approved; the paused run checks for an answer this often.
    approval_timeout_hours: float = Field(default=6.0, alias="SOPFLOW_APPROVAL_TIMEOUT_HOURS", gt=0)
    approval_poll_seconds: int = Field(default=10, alias="SOPFLOW_APPROVAL_POLL_SECONDS", ge=1)
    # Who hears that a run waits for approval: the name of a robot in SOPFLOW_ROBOT_KEYS posting
    # into the ops group (orchestration/approval_notices.py); unset or empty: nobody is told. The
    # run posts when it pauses, and a Prefect automation reminds the group this many minutes
    # before the timeout (at half the timeout when that is shorter).
    approval_robot: str | None = Field(default=None, alias="SOPFLOW_APPROVAL_ROBOT")
    approval_remind_minutes: int = Field(default=60, alias="SOPFLOW_APPROVAL_REMIND_MINUTES", ge=1)

    # Lifecycle stages (tasks/stages.py), in local calendar days before the classification day.
    # Activity is the last order, or the day the contact was added if there is none. In order:
    # deleted contact -> churned; added <= stage_new_days ago with <= 1 order -> new;
    # activity > stage_churned_days ago -> churned; > stage_dormant_days -> dormant;
    # >= stage_mature_orders orders (or spent >= stage_mature_spent_fen when that is > 0, or a
    # paid member when stage_mature_paid_member) -> mature; otherwise growing. The defaults are
    # the rules the demo world is generated with (demo/__init__.py).
    stage_new_days: int = Field(default=14, alias="SOPFLOW_STAGE_NEW_DAYS", ge=0)
    stage_dormant_days: int = Field(default=30, alias="SOPFLOW_STAGE_DORMANT_DAYS", ge=1)
    stage_churned_days: int = Field(default=90, alias="SOPFLOW_STAGE_CHURNED_DAYS", ge=1)
    stage_mature_orders: int = Field(default=6, alias="SOPFLOW_STAGE_MATURE_ORDERS", ge=1)
    stage_mature_spent_fen: int = Field(default=0, alias="SOPFLOW_STAGE_MATURE_SPENT_FEN", ge=0)
    stage_mature_paid_member: bool = Field(default=False, alias="SOPFLOW_STAGE_MATURE_PAID_MEMBER")

    # The chain's coupon system (channels/coupons.py, docs/coupons.md): steps with `issue:` POST
    # here first, signed with HMAC-SHA256 of the secret; unset URL: such steps are skipped.
    coupon_url: str = Field(default="", alias="SOPFLOW_COUPON_URL")
    coupon_secret: SecretStr = Field(default=SecretStr(""), alias="SOPFLOW_COUPON_SECRET")
    coupon_connect_timeout: float = Field(
        default=3.05, alias="SOPFLOW_COUPON_CONNECT_TIMEOUT", gt=0
    )
    coupon_read_timeout: float = Field(default=5.0, alias="SOPFLOW_COUPON_READ_TIMEOUT", gt=0)

    # Mini-programs linked to the company (comma-separated appids): a step's mini-program card must
    # use one of them (`sopflow lint`; WeCom refuses others with 90206). Default: the demo's shop.
    miniprogram_appids: str = Field(
        default="wx5f1d8e2a9c3b7d40", alias="SOPFLOW_MINIPROGRAM_APPIDS"
    )

    @property
    def linked_appids(self) -> list[str]:
        return [a.strip() for a in self.miniprogram_appids.split(",") if a.strip()]

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read on first use."""
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests that change the environment call this)."""
    get_settings.cache_clear()
