"""Media ids kept in the database: one upload per file per 3 days across every worker."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import event

from channels.emulator import EmulatorConfig, WeComEmulator
from channels.emulator.media import media_book
from channels.media import MEDIA_LIFETIME, CachedMedia, MediaFiles, use_media_store
from channels.wecom import WeComClient
from models.db import get_engine
from models.media import MediaUploads
from tests.channels.conftest import FakeClock

START = 1_796_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    """The test's database: SQLite, or PostgreSQL where its binaries are installed."""
    name = "database_url" if request.param == "sqlite" else "postgres_url"
    return request.getfixturevalue(name)


def test_two_workers_share_one_upload_and_renew_it_once(url: str, tmp_path: Path) -> None:
    (tmp_path / "eggs.jpg").write_bytes(b"\xff\xd8\xff" + b"e" * 200)
    clock = FakeClock(START)
    with WeComEmulator(EmulatorConfig(), clock=clock) as emulator:
        workers = [WeComClient(emulator.url, "corp", "secret") for _ in range(2)]
        media = [use_media_store(w, MediaUploads(), root=tmp_path, now=clock) for w in workers]
        ids = {m.media_id("eggs.jpg", "image") for m in media if m is not None}
        clock.advance(MEDIA_LIFETIME - 3600)  # one hour left: the next use renews
        renewed = {m.media_id("eggs.jpg", "image") for m in media if m is not None}
        uploads = len(media_book(emulator).uploads)
        for worker in workers:
            worker.close()

    assert len(ids) == 1 and len(renewed) == 1 and ids != renewed
    assert uploads == 2  # the first worker's upload, then its renewal; the second used both


def test_two_racing_uploads_keep_the_first_id_written(url: str) -> None:
    first, second = MediaUploads(), MediaUploads()
    fresh_since = START - MEDIA_LIFETIME

    kept = first.keep("ab" * 32, "image", CachedMedia("id-1", START), stale_before=fresh_since)
    raced = second.keep(
        "ab" * 32, "image", CachedMedia("id-2", START + 1), stale_before=fresh_since
    )
    renewed = second.keep(
        "ab" * 32, "image", CachedMedia("id-3", START + 9), stale_before=START + 5
    )

    assert (kept.media_id, raced.media_id, renewed.media_id) == ("id-1", "id-1", "id-3")
    assert second.find("ab" * 32, "image") == renewed
    assert first.find("ab" * 32, "video") is None
    url_kept = first.keep("cd" * 32, "picurl", CachedMedia("https://p/1", START), stale_before=0)
    again = first.keep("cd" * 32, "picurl", CachedMedia("https://p/2", START + 1), stale_before=0)
    assert url_kept.media_id == again.media_id == "https://p/1"  # a picture URL is permanent


def test_a_worker_hashes_a_file_and_reads_its_id_once_however_many_sends(
    database_url: str, tmp_path: Path
) -> None:
    """Per process, a file is hashed once per (path, mtime, size) and a fresh id reused without
    the database; an edited file, an id near its end or one WeCom refused goes back to it."""
    image = tmp_path / "eggs.jpg"
    image.write_bytes(b"\xff\xd8\xff" + b"e" * 200)
    statements: list[str] = []
    engine = get_engine(database_url)
    event.listen(engine, "connect", lambda raw, _: raw.set_trace_callback(statements.append))
    engine.dispose()  # connections opened before the listener reconnect with it
    opened = _count_opens(image)
    clock = FakeClock(START)

    def reads() -> int:
        return sum("FROM media_upload" in sql and "SELECT" in sql for sql in statements)

    with WeComEmulator(EmulatorConfig(), clock=clock) as emulator:
        ids = set()
        for _ in range(20):  # a dispatch task makes a new client for each batch
            with WeComClient(emulator.url, "corp", "secret") as worker:
                media = use_media_store(worker, MediaUploads(), root=tmp_path, now=clock)
                assert media is not None
                ids.add(media.media_id("eggs.jpg", "image"))
        assert len(ids) == 1 and len(media_book(emulator).uploads) == 1
        assert opened() == 1  # read once, hashed once, uploaded from those bytes
        first_reads = reads()
        assert first_reads <= 3  # the first lookup (twice, under the upload lock) and the keep

        with WeComClient(emulator.url, "corp", "secret") as worker:
            media = use_media_store(worker, MediaUploads(), root=tmp_path, now=clock)
            assert media is not None
            media.forget("eggs.jpg", "image")  # WeCom answered 40007 for it
            refused_reads = reads()
            renewed = media.media_id("eggs.jpg", "image")
            assert renewed not in ids and reads() > refused_reads
            assert len(media_book(emulator).uploads) == 2 and opened() == 2  # read to upload

            clock.advance(MEDIA_LIFETIME - 3600)  # near its end: back to the store, renewed
            assert media.media_id("eggs.jpg", "image") not in ids | {renewed}
            assert opened() == 3
            stat = image.stat()
            image.write_bytes(b"\xff\xd8\xff" + b"f" * 200)  # same size: only mtime tells
            os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
            edited = media.media_id("eggs.jpg", "image")
            assert opened() == 4 and len(media_book(emulator).uploads) == 4
            assert media_book(emulator).media[edited]  # uploaded from the new content


def _count_opens(path: Path):
    """How many times the process has opened `path` to read since (an audit hook: Python's
    own events)."""
    seen = [0]
    target = str(path)

    def hook(event_name: str, args: tuple) -> None:
        if event_name == "open" and str(args[0]) == target and "r" in str(args[1]):
            seen[0] += 1

    sys.addaudithook(hook)  # hooks cannot be removed; this one only counts one test's file
    return lambda: seen[0]


def test_dispatch_tasks_starting_together_upload_a_file_once(
    database_url: str, tmp_path: Path
) -> None:
    """Each dispatch task opens a client of its own; tasks of one process share the upload."""
    (tmp_path / "eggs.jpg").write_bytes(b"\xff\xd8\xff" + b"e" * 200)
    with WeComEmulator(EmulatorConfig()) as emulator:
        workers = [WeComClient(emulator.url, "corp", "secret") for _ in range(4)]
        media = [use_media_store(w, MediaUploads(), root=tmp_path) for w in workers]
        start = threading.Barrier(len(media))

        def send(files: MediaFiles) -> str:
            start.wait()
            return files.media_id("eggs.jpg", "image")

        with ThreadPoolExecutor(len(media)) as pool:
            ids = set(pool.map(send, [m for m in media if m is not None]))
        uploads = len(media_book(emulator).uploads)
        for worker in workers:
            worker.close()

    assert len(ids) == 1 and uploads == 1
