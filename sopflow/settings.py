"""Run settings, read once from the environment (and `.env`) into one object."""

from __future__ import annotations

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

    # Delivery channel for customer and group mass messages.
    channel: Literal["outbox", "wecom"] = Field(default="outbox", alias="SOPFLOW_CHANNEL")
    wecom_api_base: str = Field(default="https://qyapi.weixin.qq.com", alias="WECOM_API_BASE")
    wecom_corp_id: str = Field(default="", alias="WECOM_CORP_ID")
    wecom_corp_secret: SecretStr = Field(default=SecretStr(""), alias="WECOM_CORP_SECRET")
    wecom_connect_timeout: float = Field(default=3.05, alias="WECOM_CONNECT_TIMEOUT")
    wecom_read_timeout: float = Field(default=15.0, alias="WECOM_READ_TIMEOUT")

    # Audience streaming: recipients per Prefect task run.
    batch_size: int = Field(default=5000, alias="SOPFLOW_BATCH_SIZE", ge=1)

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
