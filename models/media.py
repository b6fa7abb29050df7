"""What WeCom holds of our files and templates: media ids by file content, the group welcome template."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import false, select
from sqlmodel import Field, SQLModel, col

from core.settings import get_settings
from models.bulk import dialect_insert
from models.db import session_scope
from models.types import UTCDateTime


class MediaUpload(SQLModel, table=True):
    """One file content WeCom has as media: the id `media/upload` gave (3 days) or, for kind
    `picurl`, the permanent URL `uploadimg` gave. One row per (content, kind), shared by every
    worker: an upload is reused until it is near its end."""

    __tablename__ = "media_upload"

    sha256: str = Field(primary_key=True, max_length=64)
    kind: str = Field(primary_key=True, max_length=16)  # image | video | file | picurl
    media_id: str = Field(max_length=512)  # the media id, or the picture URL for picurl
    created_at: dt.datetime = Field(sa_type=UTCDateTime)  # as WeCom answered


class GroupWelcomeTemplate(SQLModel, table=True):
    """The group welcome template (进群欢迎语) sopflow made in WeCom from an SOP file, and the
    hash of the content it last sent, so an unchanged file is not sent again."""

    __tablename__ = "group_welcome_template"

    name: str = Field(primary_key=True, max_length=64)  # the file's name, e.g. group-welcome
    template_id: str = Field(max_length=128)
    content_hash: str = Field(max_length=64)
    applied_at: dt.datetime = Field(sa_type=UTCDateTime)


@dataclass(frozen=True)
class KeptMedia:
    """A kept media id (or picture URL) and when WeCom made it (unix seconds)."""

    media_id: str
    created_at: float


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(max(seconds, 0.0), dt.UTC)


class MediaUploads:
    """The database's media ids, as a `channels.media.MediaStore` (one row per content and kind)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url

    @property
    def scope(self) -> str:
        """The database these ids are shared in: a process may reuse an id it saw fresh here."""
        return self.url or get_settings().database_url

    def find(self, sha256: str, kind: str) -> KeptMedia | None:
        """The kept media of this content and kind, if any."""
        with session_scope(self.url, readonly=True) as session:
            row = session.get(MediaUpload, (sha256, kind))
            if row is None:
                return None
            return KeptMedia(row.media_id, row.created_at.timestamp())

    def keep(self, sha256: str, kind: str, media: Any, *, stale_before: float) -> KeptMedia:
        """Insert `media` (with `media_id`, `created_at`), or replace a kept row created before
        `stale_before` (infinity: always); answer the row kept. Two workers that uploaded the
        same file at once both use the first row written."""
        media_id, created_at = str(media.media_id), float(media.created_at)
        table = MediaUpload.__table__  # type: ignore[attr-defined]
        with session_scope(self.url) as session:
            insert = dialect_insert(session, table).values(
                sha256=sha256, kind=kind, media_id=media_id, created_at=_utc(created_at)
            )
            session.execute(
                insert.on_conflict_do_update(
                    index_elements=["sha256", "kind"],
                    set_={
                        "media_id": insert.excluded.media_id,
                        "created_at": insert.excluded.created_at,
                    },
                    where=_replaceable(table, stale_before),
                )
            )
            row = session.execute(
                select(col(MediaUpload.media_id), col(MediaUpload.created_at)).where(
                    col(MediaUpload.sha256) == sha256, col(MediaUpload.kind) == kind
                )
            ).one()
        return KeptMedia(row[0], row[1].timestamp())


def _replaceable(table: Any, stale_before: float) -> Any:
    """Which kept row an upload replaces: none (0), any (infinity), or those created before."""
    if stale_before <= 0:
        return false()
    if math.isinf(stale_before):
        return None
    return table.c.created_at < _utc(stale_before)
