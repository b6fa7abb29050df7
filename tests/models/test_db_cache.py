"""SQLite's page cache: big only inside a write transaction, small for reads and idle pooled connections."""

from __future__ import annotations

from sqlalchemy import text

from models.db import IDLE_CACHE_KB, WRITE_CACHE_KB, session_scope


def _cache_of_session(readonly: bool) -> tuple[int, int]:
    with session_scope(readonly=readonly) as session:
        connection = session.connection()
        kb = -int(connection.execute(text("PRAGMA cache_size")).scalar_one())
        return kb, id(connection.connection.dbapi_connection)


def test_a_write_transaction_gets_the_big_cache_and_gives_it_back(database_url: str) -> None:
    assert IDLE_CACHE_KB < WRITE_CACHE_KB

    written, first = _cache_of_session(readonly=False)
    read, second = _cache_of_session(readonly=True)
    written_again, third = _cache_of_session(readonly=False)

    # One pooled connection serves all three sessions in turn: the read runs on the very
    # connection the write just filled, and must not keep its 64 MB.
    assert first == second == third
    assert (written, read, written_again) == (WRITE_CACHE_KB, IDLE_CACHE_KB, WRITE_CACHE_KB)

    with session_scope() as session:
        raw = session.connection().connection.dbapi_connection
    assert raw is not None
    assert -raw.execute("PRAGMA cache_size").fetchone()[0] == IDLE_CACHE_KB  # idle in the pool
