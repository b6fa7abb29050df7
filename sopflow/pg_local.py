"""A PostgreSQL server from this machine's binaries (initdb, pg_ctl), for `sopflow up --postgres` and the tests."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url


def postgres_available() -> bool:
    return bool(shutil.which("initdb") and shutil.which("pg_ctl"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_postgres(*args: str) -> list[str]:
    """The command run as the `postgres` user when we are root: PostgreSQL refuses to run as root."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


def with_database(server_url: str, name: str) -> str:
    """`server_url` pointing at database `name` instead (user, password, host, query kept)."""
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def create_database(server_url: str, name: str) -> str:
    """An empty database `name` on the server (dropped first if it exists); its URL."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return with_database(server_url, name)


def ensure_database(server_url: str, name: str) -> bool:
    """Create database `name` on the server unless it exists (kept as it is); whether it was created."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.exec_driver_sql(
                "SELECT 1 FROM pg_database WHERE datname = %(name)s", {"name": name}
            ).first()
            if found is None:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return found is None


@dataclass(frozen=True)
class LocalPostgres:
    """A server whose data, log and socket live in `root`; `url()` reaches it on 127.0.0.1:`port`."""

    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def running(self) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        status = subprocess.run(
            as_postgres("pg_ctl", "-D", str(self.data), "status"), capture_output=True
        )
        return status.returncode == 0

    def start(self) -> None:
        """initdb on first use (trust on loopback only), then start and wait until it accepts."""
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        if not (self.data / "PG_VERSION").exists():
            initdb = ["initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
            _run(as_postgres(*initdb), "initdb")
        options = f"-p {self.port} -k {self.root} -h 127.0.0.1"
        start = ["pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-o", options]
        _run(as_postgres(*start, "start"), f"pg_ctl start (log: {self.root / 'log'})")

    def stop(self, *, immediate: bool = False) -> None:
        mode = "immediate" if immediate else "fast"
        subprocess.run(
            as_postgres("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"),
            capture_output=True,
        )


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {' / '.join(said)}")


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server in a temporary folder; yield a SQLAlchemy URL for the `postgres` database."""
    server = LocalPostgres(Path(tempfile.mkdtemp(prefix="sopflow-pg-")), free_port())
    server.start()

    def remove() -> None:
        if server.root.exists():
            server.stop(immediate=True)
            shutil.rmtree(server.root, ignore_errors=True)
        atexit.unregister(remove)

    # Also at exit: a caller that never closes us (pytest ending on an INTERNALERROR) would leave
    # the server running, since a generator closed during interpreter shutdown cannot run pg_ctl.
    atexit.register(remove)
    try:
        yield server.url()
    finally:
        remove()
