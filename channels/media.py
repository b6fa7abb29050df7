"""Local files made WeCom media: `media/upload` ids cached by content for their 3 days, `uploadimg` URLs kept."""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from channels.errcodes import TOKEN_ERRCODES
from channels.http import JsonDict, errcode, raise_for_errcode, request_json, required
from core.errors import ChannelRejected

if TYPE_CHECKING:
    from channels.wecom import WeComClient

UPLOAD = "/cgi-bin/media/upload"
UPLOADIMG = "/cgi-bin/media/uploadimg"
MEDIA_LIFETIME = 3 * 86400.0  # seconds a media/upload id lives (WECOM_API.md §2)
RENEW_MARGIN = 6 * 3600.0  # re-upload when less than this is left: a send may take hours
PICTURE_URL = "picurl"  # the cache kind of an uploadimg URL (permanent, never renewed)
MIN_BYTES = 5  # WeCom refuses files of 5 bytes or fewer
# media type -> (suffixes WeCom takes, largest size in bytes) (media/upload, uploadimg docs)
LIMITS: dict[str, tuple[tuple[str, ...], int]] = {
    "image": ((".jpg", ".jpeg", ".png"), 10 * 1024 * 1024),
    "video": ((".mp4",), 10 * 1024 * 1024),
    "file": ((), 20 * 1024 * 1024),
    PICTURE_URL: ((".jpg", ".jpeg", ".png"), 2 * 1024 * 1024),
}
IMAGE_HEADS = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")  # a JPEG's and a PNG's first bytes
CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".mp4": "video/mp4",
}


@dataclass(frozen=True)
class CachedMedia:
    """What WeCom gave for one file's content: a media id (or an uploadimg URL) and when."""

    media_id: str
    created_at: float  # unix seconds, as WeCom answered


class Media(Protocol):
    """A kept media id (or picture URL) and when WeCom made it; `CachedMedia` or a store's own."""

    @property
    def media_id(self) -> str: ...

    @property
    def created_at(self) -> float: ...


class MediaStore(Protocol):
    """Where media ids are kept, by (sha256 of the file's content, kind)."""

    def find(self, sha256: str, kind: str) -> Media | None:
        """The kept media of this content and kind, if any."""
        ...

    def keep(self, sha256: str, kind: str, media: Media, *, stale_before: float) -> Media:
        """Keep `media` unless a kept one created at or after `stale_before` exists; answer
        the one kept (two racing uploaders both use the first one kept)."""
        ...


class _Memo:
    """A small thread-safe LRU map, so a long-lived worker never grows it without end."""

    def __init__(self, size: int = 4096) -> None:
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> object | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: Hashable, value: object) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def drop(self, key: Hashable) -> None:
        with self._lock:
            self._items.pop(key, None)


# Per process, shared by every MediaFiles (a dispatch task makes a new client per batch): the
# content hash of a file by (absolute path, mtime_ns, size), and the media ids this process
# has seen fresh, by (store scope, WeCom corp, content, kind). The store stays the truth for
# a first lookup and for uploads; a memo entry is used only while fresh, as a stored one is.
_HASHES = _Memo()
_KNOWN = _Memo()


class MemoryMediaStore:
    """Media ids kept for this process only (tests, the outbox, one-off commands)."""

    def __init__(self) -> None:
        self._kept: dict[tuple[str, str], Media] = {}
        self._lock = threading.Lock()

    def find(self, sha256: str, kind: str) -> Media | None:
        with self._lock:
            return self._kept.get((sha256, kind))

    def keep(self, sha256: str, kind: str, media: Media, *, stale_before: float) -> Media:
        with self._lock:
            kept = self._kept.get((sha256, kind))
            if kept is None or kept.created_at < stale_before:
                kept = self._kept[(sha256, kind)] = media
            return kept


class MediaFiles:
    """A client's local files as WeCom media: one upload per file content and kind per 3 days,
    however many sends use it; `uploads` counts the calls made."""

    def __init__(
        self,
        client: WeComClient,
        store: MediaStore | None = None,
        *,
        root: str | Path | None = None,
        now: Callable[[], float] = time.time,
        margin: float = RENEW_MARGIN,
    ) -> None:
        self.client = client
        self.store: MediaStore = store or MemoryMediaStore()
        self.root = Path(root) if root is not None else None
        self.now = now
        self.margin = margin
        self.uploads = 0
        scope = getattr(self.store, "scope", None)  # a shared store names what it is shared as
        self._scope: Hashable = (
            (scope, client.base_url, client.corp_id) if scope is not None else object()
        )
        # One upload at a time per store in this process: each dispatch task opens a client of
        # its own, and tasks starting together would each upload the same file.
        self._lock = _upload_lock(self._scope) if scope is not None else threading.Lock()

    def media_id(self, path: str, kind: str) -> str:
        """A media id for the file at `path` (relative to the SOP folder), uploaded if none fresh."""
        return self._resolve(path, kind).media_id

    def picture_url(self, path: str) -> str:
        """A permanent picture URL (uploadimg) for the image at `path`, uploaded once ever."""
        return self._resolve(path, PICTURE_URL).media_id

    def forget(self, path: str, kind: str) -> None:
        """Treat the file's kept media as expired (WeCom answered 40007 for it)."""
        sha, _ = self._digest(self._check(path, kind))
        _KNOWN.drop((self._scope, sha, kind))
        stale = CachedMedia("", -1.0)
        self.store.keep(sha, kind, stale, stale_before=float("inf"))

    def _fresh(self, media: Media | None, kind: str) -> bool:
        if media is None or not media.media_id:
            return False
        if kind == PICTURE_URL:
            return True
        return media.created_at + MEDIA_LIFETIME - self.now() > self.margin

    def _resolve(self, path: str, kind: str) -> Media:
        full = self._check(path, kind)
        sha, just_read = self._digest(full)
        known = _KNOWN.get((self._scope, sha, kind))
        if isinstance(known, CachedMedia) and self._fresh(known, kind):
            return known
        found = self.store.find(sha, kind)
        if not self._fresh(found, kind):
            with self._lock:
                found = self.store.find(sha, kind)
                if not self._fresh(found, kind):
                    data = just_read
                    if data is None:  # hashed earlier: hash the bytes sent, even if just edited
                        data = self._read(full, path)
                        sha = hashlib.sha256(data).hexdigest()
                    uploaded = self._upload(kind, full.name, data)
                    self.uploads += 1
                    stale_before = (
                        0.0 if kind == PICTURE_URL else self.now() - MEDIA_LIFETIME + self.margin
                    )
                    found = self.store.keep(sha, kind, uploaded, stale_before=stale_before)
        assert found is not None
        kept = CachedMedia(found.media_id, found.created_at)
        _KNOWN.put((self._scope, sha, kind), kept)
        return kept

    def _digest(self, full: Path) -> tuple[str, bytes | None]:
        """The file's content hash, read and hashed once per (path, mtime, size) per process;
        and its bytes when they were read for it."""
        try:
            stat = full.stat()
        except OSError as error:
            raise _unreadable(str(full), error) from None
        key = (str(full.resolve()), stat.st_mtime_ns, stat.st_size)
        sha = _HASHES.get(key)
        if isinstance(sha, str):
            return sha, None
        data = self._read(full, str(full))
        sha = hashlib.sha256(data).hexdigest()
        _HASHES.put(key, sha)
        return sha, data

    def _check(self, path: str, kind: str) -> Path:
        """The file's full path, refused with a clear reason when WeCom would refuse it."""
        what = f"attachment file {path}"
        if "\0" in path:
            raise ChannelRejected(f"attachment file {path!r}: a NUL in its name", errcode=40004)
        full = Path(path) if Path(path).is_absolute() or self.root is None else self.root / path
        if self.root is not None and not is_inside(full, self.root):
            raise ChannelRejected(
                f"{what}: points outside the SOP folder {self.root} (`..`, an absolute path or a "
                "link, or a link loop); copy the file into its media/ folder",
                errcode=40004,
            )
        try:
            size = full.stat().st_size
        except OSError as error:
            raise _unreadable(path, error) from None
        suffixes, largest = LIMITS.get(kind, ((), 20 * 1024 * 1024))
        if suffixes and full.suffix.lower() not in suffixes:
            raise ChannelRejected(
                f"{what}: a {kind} must be {'/'.join(suffixes)}, not {full.suffix or 'no suffix'}",
                errcode=40004,
            )
        if not MIN_BYTES < size <= largest:
            raise ChannelRejected(
                f"{what}: {size} bytes; a {kind} must be over {MIN_BYTES} bytes and at "
                f"most {largest // (1024 * 1024)} MB",
                errcode=40006,
            )
        return full

    @staticmethod
    def _read(full: Path, path: str) -> bytes:
        try:
            return full.read_bytes()
        except OSError as error:
            raise _unreadable(path, error) from None

    def _upload(self, kind: str, name: str, data: bytes) -> CachedMedia:
        if kind in ("image", PICTURE_URL) and not data.startswith(IMAGE_HEADS):
            raise ChannelRejected(
                f"attachment file {name}: not really a JPG/PNG image (its first bytes say "
                "otherwise); re-export it as JPG or PNG",
                errcode=40004,
            )
        content_type = CONTENT_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")
        files = {"media": (name, data, content_type)}
        if kind == PICTURE_URL:
            answer = upload(self.client, UPLOADIMG, {}, files)
            return CachedMedia(required(answer, "url", UPLOADIMG), self.now())
        answer = upload(self.client, UPLOAD, {"type": kind}, files)
        return CachedMedia(required(answer, "media_id", UPLOAD), self._created_at(answer))

    def _created_at(self, answer: JsonDict) -> float:
        """When WeCom made the media; now when its `created_at` is absent or not a number
        (the id then counts as fresh for 3 days from now, a little past its true end at worst)."""
        try:
            created = float(answer["created_at"])
        except (KeyError, TypeError, ValueError):
            return self.now()
        return created if math.isfinite(created) else self.now()


_UPLOAD_LOCKS: dict[Hashable, threading.Lock] = {}
_UPLOAD_LOCKS_GUARD = threading.Lock()


def _upload_lock(scope: Hashable) -> threading.Lock:
    """The process's lock for uploads to the shared store `scope` names."""
    with _UPLOAD_LOCKS_GUARD:
        return _UPLOAD_LOCKS.setdefault(scope, threading.Lock())


def is_inside(path: Path, root: Path) -> bool:
    """Whether `path`, links followed, is in `root`; a link loop or a bad name is not."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):  # RuntimeError: a symlink loop (Python < 3.13)
        return False


def _unreadable(path: str, error: OSError) -> ChannelRejected:
    return ChannelRejected(
        f"attachment file {path}: cannot be read ({error.strerror or error}); put it under the "
        "SOP folder (e.g. sop/media/) and name it relative to that folder"
    )


def upload(
    client: WeComClient, path: str, query: dict[str, str], files: dict[str, tuple[str, bytes, str]]
) -> JsonDict:
    """One multipart POST with the client's token and its rate limit for `path`; one token
    refresh on a token errcode, as every other call."""
    answer: JsonDict = {}
    for attempt in range(2):
        token = client._token_for(path)
        client.limiter.acquire(path)
        answer = request_json(
            client._session, "POST", client.base_url, path,
            params={"access_token": token, **query}, payload=None, files=files,
            timeout=client.timeout, redact=client._redact,
        )  # fmt: skip
        if errcode(answer) not in TOKEN_ERRCODES or attempt:
            break
        client._forget_token(token)
    raise_for_errcode("POST", path, answer, client._redact)
    return answer


def media_files(client: WeComClient) -> MediaFiles:
    """The client's media files, made on first use with a per-process store and the settings'
    SOP folder; `use_media_store` gives it a store shared by every process."""
    found: MediaFiles | None = getattr(client, "_media_files", None)
    if found is None:
        from core.settings import get_settings

        found = MediaFiles(client, root=get_settings().sop_dir)
        client._media_files = found  # type: ignore[attr-defined]
    return found


def use_media_store(
    client: object,
    store: MediaStore,
    *,
    root: str | Path | None = None,
    now: Callable[[], float] = time.time,
) -> MediaFiles | None:
    """Keep the media ids of a WeCom client in `store` (the database's, shared by every worker),
    its files read under `root` (default: the settings' SOP folder); other channels upload
    nothing and are left alone (None)."""
    from channels.wecom import WeComClient

    if not isinstance(client, WeComClient):
        return None
    from core.settings import get_settings

    folder = root if root is not None else get_settings().sop_dir
    files = MediaFiles(client, store, root=folder, now=now)
    client._media_files = files  # type: ignore[attr-defined]
    return files
