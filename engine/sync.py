"""The WeCom directory sync: corp tags and follow users, every follow user's contacts page by page
(batch/get_by_user), the sweep of what WeCom no longer lists, then the customer groups — each page
committed with its checkpoint, so a killed pass continues where it stopped."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlmodel import Session

from channels.wecom import WeComClient
from core.clock import utcnow
from core.errors import ChannelRateLimited, ChannelRejected, ChannelTransient
from models.db import session_scope
from models.directory import SyncRun, WecomTag
from models.directory_groups import dismiss_missing, known_groups, write_group
from models.directory_sync import (
    live_relations,
    seen_count,
    staff_regions,
    sweep,
    upsert_corp_tags,
    upsert_staff,
    write_page,
)
from models.tag_push import without_auto_tags

logger = logging.getLogger(__name__)
T = TypeVar("T")

CHUNK = 100  # batch/get_by_user takes at most 100 userids
PAGE_LIMIT = 100  # and answers at most 100 contacts a page
GROUP_PAGE = 1000  # groupchat/list
GROUPS_PER_COMMIT = 50
MAX_TRIES = 8  # per call, on 45009 / transient failures (the token is refreshed by the client)
MAX_BACKOFF = 60.0  # seconds: WeCom's per-minute block lasts a minute
JOIN_SECONDS = 20.0  # how long a stopped pass waits for its page reader's call in flight


class DirectorySyncError(RuntimeError):
    """The pass cannot go on safely (it stops; the next sync resumes it)."""


@dataclass
class SyncReport:
    """What one `sync_directory` call did."""

    run_id: int
    resumed: bool
    pages: int = 0  # batch/get_by_user pages read by this call
    calls: int = 0  # WeCom API calls made by this call (retries included)
    groups_read: int = 0
    writes: Counter[str] = field(default_factory=Counter)  # rows inserted or changed, by kind
    seconds: float = 0.0

    @property
    def total_writes(self) -> int:
        return sum(self.writes.values())


@dataclass
class _Pass:
    client: WeComClient
    report: SyncReport
    sleep: Callable[[float], None]
    backoff: float
    url: str | None
    pages_per_commit: int

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One WeCom read, retried with exponential backoff on 45009 and transient failures."""
        for attempt in range(MAX_TRIES):
            self.report.calls += 1
            try:
                return fn(*args, **kwargs)
            except ChannelTransient as error:
                if attempt == MAX_TRIES - 1:
                    raise
                wait = min(MAX_BACKOFF, self.backoff * 2**attempt)
                kind = "rate limited" if isinstance(error, ChannelRateLimited) else "failed"
                logger.warning(
                    "directory sync: WeCom call %s (%s); retrying in %.1f s", kind, error, wait
                )
                self.sleep(wait)
        raise AssertionError("unreachable")

    def checkpoint(self, session: Session, run_id: int, **values: Any) -> None:
        counts = json.dumps(dict(self.report.writes), ensure_ascii=False, sort_keys=True)
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)  # type: ignore[arg-type]
            .values(counts=counts, writes=self.report.total_writes, **values)
        )


def sync_directory(
    client: WeComClient,
    *,
    full: bool = False,
    url: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    backoff: float = 1.0,
    pages_per_commit: int = 10,
) -> SyncReport:
    """Run (or resume) one pass. `full` also re-reads every group's details (else only groups
    that are new or changed status: the callback receiver keeps members current between passes).
    Pages are committed with the checkpoint every `pages_per_commit`: a killed pass re-reads at
    most that many."""
    started = time.perf_counter()
    run, resumed = _open_run(full, url)
    work = _Pass(client, SyncReport(run.id or 0, resumed), sleep, backoff, url, pages_per_commit)
    work.report.writes.update(json.loads(run.counts or "{}") if resumed else {})
    if resumed:
        logger.info("directory sync: resuming pass %s at %s, page %s", run.id, run.phase, run.pages)
    if run.phase == "tags":
        _tags_and_staff(work, run)
    if run.phase == "customers":
        _customers(work, run)
    if run.phase == "sweep":
        _sweep(work, run)
    if run.phase == "groups":
        _groups(work, run)
    work.report.seconds = time.perf_counter() - started
    return work.report


def _open_run(full: bool, url: str | None) -> tuple[SyncRun, bool]:
    """The unfinished pass to resume, or a new one."""
    with session_scope(url) as session:
        run = session.execute(
            select(SyncRun).where(SyncRun.finished_at.is_(None)).order_by(SyncRun.id.desc())  # type: ignore[union-attr]
        ).scalar()
        if run is not None:
            run.full = run.full or full
            return run, True
        run = SyncRun(full=full, started_at=utcnow())
        session.add(run)
        session.flush()
        return run, False


def _tags_and_staff(work: _Pass, run: SyncRun) -> None:
    groups = work.call(work.client.get_corp_tag_list)
    staff = work.call(work.client.get_follow_user_list)
    with session_scope(work.url) as session:
        _, tag_writes = upsert_corp_tags(groups, session=session)
        _, staff_added = upsert_staff(staff, session=session)
        work.report.writes.update({"tags": tag_writes, "staff added": staff_added})
        run.phase, run.staff_userids, run.chunk, run.cursor = "customers", "\n".join(staff), 0, ""
        work.checkpoint(session, run.id or 0, phase=run.phase, staff_userids=run.staff_userids, chunk=0, cursor="")  # fmt: skip


def _customers(work: _Pass, run: SyncRun) -> None:
    """Page through each chunk of 100 follow users; the next page is fetched while the current
    ones are written, and every `pages_per_commit` pages are committed with the checkpoint."""
    staff = [u for u in run.staff_userids.split("\n") if u]
    chunks = [staff[i : i + CHUNK] for i in range(0, len(staff), CHUNK)]
    with session_scope(work.url, readonly=True) as session:
        staff_ids, _ = upsert_staff([], session=session)
        regions = staff_regions(session=session)
        tags = dict(session.execute(select(WecomTag.wecom_id, WecomTag.tag_id)).tuples().all())  # type: ignore[call-overload]
        tags = without_auto_tags(tags, session=session)  # pushed by sopflow, not read back
    reader = _Reader(work, chunks, (run.chunk, run.cursor), ahead=2 * work.pages_per_commit)
    with reader:
        buffered: list[dict[str, Any]] = []
        pages = 0
        for page, position, last in reader:
            buffered += page.get("external_contact_list") or []
            pages += 1
            if not last and pages < work.pages_per_commit:
                continue
            run.chunk, run.cursor = position
            run.pages += pages
            work.report.pages += pages
            run.phase = "sweep" if last else "customers"
            with session_scope(work.url) as session:
                work.report.writes += write_page(
                    buffered, staff_ids=staff_ids, regions=regions, tags=tags,
                    run_id=run.id or 0, now=utcnow(), session=session,
                )  # fmt: skip
                work.checkpoint(session, run.id or 0, chunk=run.chunk, cursor=run.cursor, pages=run.pages, phase=run.phase)  # fmt: skip
            buffered, pages = [], 0
    run.phase = "sweep"


class _Reader:
    """Reads batch/get_by_user pages in a thread, up to `ahead` pages ahead of the writer, so
    WeCom's answers and the database writes overlap. Iterating yields (page, position after it,
    whether it is the last); a failed read is raised to the writer. Pages read but not yet
    written are simply read again by the next pass after a crash."""

    def __init__(
        self, work: _Pass, chunks: list[list[str]], position: tuple[int, str], ahead: int
    ) -> None:
        self._work, self._chunks, self._start = work, chunks, position
        self._pages: queue.Queue[tuple[dict[str, Any], tuple[int, str], bool] | BaseException]
        self._pages = queue.Queue(maxsize=max(1, ahead))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="sync-fetch", daemon=True)

    def __enter__(self) -> _Reader:
        if self._start[0] < len(self._chunks):
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()  # a reader mid-call or mid-backoff stops after it (a daemon thread)
        if self._thread.is_alive():
            self._thread.join(timeout=JOIN_SECONDS)

    def __iter__(self) -> Iterator[tuple[dict[str, Any], tuple[int, str], bool]]:
        if self._start[0] >= len(self._chunks):
            return
        while True:
            item = self._pages.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if item[2]:
                return

    def _read(self) -> None:
        position = self._start
        try:
            while not self._stop.is_set():
                page, position = _fetch(self._work, self._chunks, *position)
                last = position[0] >= len(self._chunks)
                self._put((page, position, last))
                if last:
                    return
        except BaseException as error:  # handed to the writer, which raises it
            self._put(error)

    def _put(self, item: tuple[dict[str, Any], tuple[int, str], bool] | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._pages.put(item, timeout=0.1)
                return
            except queue.Full:
                continue


def _fetch(
    work: _Pass, chunks: list[list[str]], chunk: int, cursor: str
) -> tuple[dict[str, Any], tuple[int, str]]:
    """One batch/get_by_user page at (chunk, cursor) and the position after it."""
    try:
        page = work.call(work.client.batch_get_by_user, chunks[chunk], cursor or None, PAGE_LIMIT)
    except ChannelRejected as error:
        if not cursor or error.errcode != 40058:
            raise
        logger.warning("directory sync: WeCom refused the saved cursor; re-reading chunk %s", chunk)
        return _fetch(work, chunks, chunk, "")
    following = page.get("next_cursor") or ""
    return page, (chunk, following) if following else (chunk + 1, "")


def _sweep(work: _Pass, run: SyncRun) -> None:
    with session_scope(work.url) as session:
        if seen_count(run.id or 0, session=session) == 0 and live_relations(session=session) > 0:
            raise DirectorySyncError(
                "WeCom listed no contacts at all, yet the database holds live follow relations: "
                "refusing to mark them all deleted. Check that WECOM_CORP_SECRET is the "
                "customer-contact (客户联系) secret and its visible range covers the staff."
            )
        work.report.writes += sweep(run.id or 0, now=utcnow(), session=session)
        run.phase, run.cursor = "groups", ""
        work.checkpoint(session, run.id or 0, phase="groups", cursor="")


def _groups(work: _Pass, run: SyncRun) -> None:
    listed: dict[str, int] = {}
    cursor: str | None = None
    while True:
        page = work.call(work.client.groupchat_list, cursor, GROUP_PAGE)
        listed.update(
            {g["chat_id"]: int(g.get("status") or 0) for g in page.get("group_chat_list") or []}
        )
        cursor = page.get("next_cursor") or None
        if cursor is None:
            break
    with session_scope(work.url, readonly=True) as session:
        known = known_groups(session=session)
        staff_ids, _ = upsert_staff([], session=session)
        regions = staff_regions(session=session)
    todo = [
        chat_id
        for chat_id in sorted(listed)
        if chat_id > run.cursor
        and (run.full or known.get(chat_id, (0, None))[1] != listed[chat_id])
    ]
    for start in range(0, len(todo), GROUPS_PER_COMMIT):
        batch = todo[start : start + GROUPS_PER_COMMIT]
        chats = []
        for chat_id in batch:
            try:
                chats.append(work.call(work.client.get_group_chat, chat_id)["group_chat"])
            except ChannelRejected as error:  # dismissed since it was listed
                logger.info("directory sync: group %s not readable (%s); skipped", chat_id, error)
        work.report.groups_read += len(chats)
        with session_scope(work.url) as session:
            owners = [c["owner"] for c in chats if c.get("owner") not in staff_ids]
            if owners:
                staff_ids, added = upsert_staff(owners, session=session)
                work.report.writes["staff added"] += added
            now = utcnow()
            for chat in chats:
                work.report.writes += write_group(
                    chat, listed[chat["chat_id"]], staff_ids=staff_ids, regions=regions,
                    now=now, session=session,
                )  # fmt: skip
            run.cursor = batch[-1]
            work.checkpoint(session, run.id or 0, cursor=run.cursor)
    with session_scope(work.url) as session:
        now = utcnow()
        work.report.writes["groups dismissed"] += dismiss_missing(
            set(listed), now=now, session=session
        )
        run.phase = "done"
        work.checkpoint(session, run.id or 0, phase="done", finished_at=now)
    work.report.writes = Counter({k: v for k, v in work.report.writes.items() if v})
