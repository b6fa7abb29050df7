"""A throwaway PostgreSQL 15 server for the tests (the session's Prefect server, `postgres` tests)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(*args: str) -> list[str]:
    # These machines run tests as root; PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


def postgres_available() -> bool:
    return bool(shutil.which("initdb") and shutil.which("pg_ctl"))


def create_database(server_url: str, name: str) -> str:
    """An empty database `name` on the server (dropped first if it exists); its URL."""
    from sqlalchemy import create_engine

    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server in a temporary folder; yield a SQLAlchemy URL for the `postgres` database."""
    root = Path(tempfile.mkdtemp(prefix="sopflow-pg-"))
    data = root / "data"
    port = _free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    subprocess.run(
        _as_postgres("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"),
        check=True,
        capture_output=True,
    )
    start = [
        "pg_ctl",
        "-D",
        str(data),
        "-l",
        str(root / "log"),
        "-w",
        "-o",
        f"-p {port} -k {root} -h 127.0.0.1",
        "start",
    ]
    subprocess.run(_as_postgres(*start), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres("pg_ctl", "-D", str(data), "-m", "immediate", "stop"), capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)
