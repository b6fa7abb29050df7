"""Where the emulator keeps its state: nowhere (`MemoryStore`) or a SQLite file (`SqliteStore`).

The file holds one row per mass message (targets and fail list as JSON, so a 10,000-target
`add_msg_template` is one insert), its reminders and cancellation, the access tokens, the
robot posts, the display names given to ids and the config changed at run time. Each change
is one SQLite transaction in WAL mode, committed before the emulator answers: a killed
emulator loses nothing it answered for and never leaves a half-written file. Call counts and
rate-limit windows are not kept.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JsonDict = dict[str, Any]
STATE_FILE = "emulator-state.sqlite"  # under the data directory (`sopflow emulator`)
SCHEMA_VERSION = 1
CHECKPOINT_PAGES = 10_000
SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    msgid TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    chat_type TEXT NOT NULL,
    sender TEXT NOT NULL,
    content TEXT NOT NULL,
    create_time REAL NOT NULL,
    targets TEXT NOT NULL,
    fail_list TEXT NOT NULL,
    attachments TEXT NOT NULL,
    reminders TEXT NOT NULL,
    cancelled_at REAL
);
CREATE TABLE IF NOT EXISTS token (token TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS robot_post (id INTEGER PRIMARY KEY, key TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS setting (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS display_name (id TEXT PRIMARY KEY, name TEXT NOT NULL);
"""
_JSON_COLUMNS = ("targets", "fail_list", "attachments", "reminders")
_MESSAGE_COLUMNS = (
    "msgid",
    "seq",
    "chat_type",
    "sender",
    "content",
    "create_time",
    *_JSON_COLUMNS,
    "cancelled_at",
)


@dataclass
class Snapshot:
    """The state a store holds: message rows (oldest first), tokens, robot posts, names, saved config."""

    messages: list[JsonDict] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)
    robot_posts: dict[str, list[JsonDict]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    config: JsonDict | None = None


class MemoryStore:
    """Keeps nothing: the emulator's state lives and dies with the process."""

    path: Path | None = None

    def load(self, now: float) -> Snapshot:
        """What the store holds (tokens expired at `now` left out)."""
        return Snapshot()

    def add_message(self, message: JsonDict) -> None:
        """Record a new mass message (a `StoredMessage`'s fields)."""

    def update_message(
        self, msgid: str, reminders: list[float], cancelled_at: float | None
    ) -> None:
        """Record a message's reminders and cancellation."""

    def save_token(self, token: str, expires_at: float) -> None:
        """Record an access token."""

    def add_robot_post(self, key: str, post: JsonDict) -> None:
        """Record a post a group robot accepted."""

    def save_config(self, config: JsonDict) -> None:
        """Record the config as changed at run time."""

    def save_names(self, names: dict[str, str]) -> None:
        """Record display names of userids, chat ids, external_userids or robot keys."""

    def clear(self) -> None:
        """Forget everything."""

    def close(self) -> None:
        """Release the file, if any; the next use opens it again."""


class SqliteStore(MemoryStore):
    """The state in a SQLite file, written through: one transaction per change."""

    def __init__(self, path: str | Path) -> None:
        self.path: Path = Path(path)
        self._db: sqlite3.Connection | None = None
        # The emulator's lock serialises writes; this one guards opening and closing.
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        with self._lock:
            if self._db is None:
                self._db = _open(self.path)
            return self._db

    def load(self, now: float) -> Snapshot:
        db = self._connection()
        snapshot = Snapshot()
        columns = ", ".join(_MESSAGE_COLUMNS)
        for values in db.execute(f"SELECT {columns} FROM message ORDER BY seq"):
            row = dict(zip(_MESSAGE_COLUMNS, values, strict=True))
            for name in _JSON_COLUMNS:
                row[name] = json.loads(row[name])
            snapshot.messages.append(row)
        with db:
            db.execute("DELETE FROM token WHERE expires_at <= ?", (now,))
        snapshot.tokens = dict(db.execute("SELECT token, expires_at FROM token"))
        for key, body in db.execute("SELECT key, body FROM robot_post ORDER BY id"):
            snapshot.robot_posts.setdefault(key, []).append(json.loads(body))
        snapshot.names = dict(db.execute("SELECT id, name FROM display_name"))
        saved = db.execute("SELECT value FROM setting WHERE name = 'config'").fetchone()
        snapshot.config = json.loads(saved[0]) if saved else None
        return snapshot

    def add_message(self, message: JsonDict) -> None:
        values = [
            json.dumps(message[name], ensure_ascii=False)
            if name in _JSON_COLUMNS
            else message[name]
            for name in _MESSAGE_COLUMNS
        ]
        marks = ", ".join("?" * len(_MESSAGE_COLUMNS))
        self._write(f"INSERT INTO message ({', '.join(_MESSAGE_COLUMNS)}) VALUES ({marks})", values)

    def update_message(
        self, msgid: str, reminders: list[float], cancelled_at: float | None
    ) -> None:
        self._write(
            "UPDATE message SET reminders = ?, cancelled_at = ? WHERE msgid = ?",
            (json.dumps(reminders), cancelled_at, msgid),
        )

    def save_token(self, token: str, expires_at: float) -> None:
        self._write("INSERT OR REPLACE INTO token VALUES (?, ?)", (token, expires_at))

    def add_robot_post(self, key: str, post: JsonDict) -> None:
        self._write(
            "INSERT INTO robot_post (key, body) VALUES (?, ?)",
            (key, json.dumps(post, ensure_ascii=False)),
        )

    def save_config(self, config: JsonDict) -> None:
        self._write(
            "INSERT OR REPLACE INTO setting VALUES ('config', ?)",
            (json.dumps(config, ensure_ascii=False),),
        )

    def save_names(self, names: dict[str, str]) -> None:
        db = self._connection()
        with db:
            db.executemany("INSERT OR REPLACE INTO display_name VALUES (?, ?)", names.items())

    def clear(self) -> None:
        db = self._connection()
        with db:
            for table in ("message", "token", "robot_post", "setting", "display_name"):
                db.execute(f"DELETE FROM {table}")

    def close(self) -> None:
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()

    def _write(self, sql: str, values: Any) -> None:
        """One statement in its own transaction, committed before returning."""
        db = self._connection()
        with db:
            db.execute(sql, values)


def _open(path: Path) -> sqlite3.Connection:
    """Open (creating) the state file: WAL, NORMAL sync, schema checked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, timeout=10)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint every ~40 MB of WAL rather than 4 MB: a 1M-recipient run writes ~40 MB.
        db.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise RuntimeError(
                f"{path} holds emulator state of schema {version}, this emulator reads {SCHEMA_VERSION}; "
                "start it with another --state file (or --memory)"
            )
        with db:
            db.executescript(SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.close()
        raise
    return db
