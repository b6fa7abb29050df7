"""The embedded default channel: records each mass message as a JSON line instead of sending it."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from channels.base import MassMessage, SendReceipt, check_message, max_targets
from core.clock import DEFAULT_TZ, local, utcnow

# One lock for every outbox in the process: several channels may share a file.
_WRITE_LOCK = threading.Lock()
RECORD_FIELDS = ("time", "chat_type", "sender", "targets", "content", "msgid")
DAY_FILES = "????-??-??.jsonl"


class OutboxReadError(ValueError):
    """An outbox line that is not a record this channel wrote; the message names file and line."""


class OutboxChannel:
    """Writes one JSON line per `send_mass` call to `<directory>/<local date>.jsonl`."""

    name = "outbox"

    def __init__(
        self,
        directory: Path,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        timezone: str = DEFAULT_TZ,
    ) -> None:
        self.directory = Path(directory)
        self._clock = clock
        self._timezone = timezone

    def __repr__(self) -> str:
        return f"OutboxChannel(directory={str(self.directory)!r})"

    def max_targets(self, chat_type: str) -> int:
        """WeCom's limits, so the outbox splits batches exactly as the real channel would."""
        return max_targets(chat_type)

    def send_mass(self, message: MassMessage) -> SendReceipt:
        """Record `message` and return a fresh `outbox-…` msgid."""
        check_message(message)
        now = self._clock()
        msgid = f"outbox-{uuid.uuid4().hex}"
        record: dict[str, object] = {
            "time": now.isoformat(),
            "chat_type": message.chat_type,
            "sender": message.sender,
            "targets": list(message.targets),
            "content": message.content,
            "msgid": msgid,
        }
        if message.attachments:  # as stored on the Message (kind, path or url, title …)
            record["attachments"] = [a.as_dict() for a in message.attachments]
        self._append(self.path_for(now), record)
        return SendReceipt(msgid=msgid)

    def path_for(self, when: dt.datetime) -> Path:
        """The file a message sent at `when` goes to: one per local calendar day."""
        return self.directory / f"{local(when, self._timezone).date().isoformat()}.jsonl"

    def read(self, day: dt.date) -> list[dict[str, object]]:
        """The records written for local date `day` (empty when none)."""
        path = self.directory / f"{day.isoformat()}.jsonl"
        if not path.exists():
            return []
        with path.open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]

    def find_sent(
        self,
        sender: str,
        content: str,
        start: dt.datetime,
        end: dt.datetime,
        *,
        chat_type: str,
    ) -> list[dict[str, object]]:
        """The records of `sender` with exactly `content` written in [start, end].

        Shaped like WeCom's get_groupmsg_list_v2 items (`msgid`, `creator`, `create_time`,
        `text`) plus the `targets` each line was written for, so a crashed dispatch can be
        reconciled chunk by chunk.
        """
        day, last = local(start, self._timezone).date(), local(end, self._timezone).date()
        found: list[dict[str, object]] = []
        while day <= last:
            found += [
                _as_listed(record)
                for record in self.read(day)
                if (record["chat_type"], record["sender"], record["content"])
                == (chat_type, sender, content)
                and start <= dt.datetime.fromisoformat(str(record["time"])) <= end
            ]
            day += dt.timedelta(days=1)
        return found

    def close(self) -> None:
        """Nothing to release: each write opens and closes its file."""

    @staticmethod
    def _append(path: Path, record: dict[str, object]) -> None:
        """Append one line with a single O_APPEND write, under the process-wide lock."""
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with _WRITE_LOCK:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)


def newest_first(directory: Path, *, staff: str | None = None) -> Iterator[dict[str, object]]:
    """The records under `directory`, newest day and line first; `staff` keeps one sender's.

    Reads a day's file when the iteration reaches it, so the newest few cost one file.
    Raises `OutboxReadError` naming the file and line of a record it cannot read.
    """
    for path in sorted(Path(directory).glob(DAY_FILES), reverse=True):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number in range(len(lines), 0, -1):
            if lines[number - 1].strip():
                record = _record(path, number, lines[number - 1])
                if staff is None or record["sender"] == staff:
                    yield record


def _record(path: Path, number: int, line: str) -> dict[str, object]:
    """One line of an outbox file as a record, checked."""
    try:
        record = json.loads(line)
    except ValueError as error:
        record, problem = None, f"not JSON ({error})"
    else:
        problem = _problem(record)
    if problem:
        raise OutboxReadError(
            f"{path}:{number}: {problem}; the outbox channel writes one JSON object per line "
            f"with {', '.join(RECORD_FIELDS)} — fix or delete that line"
        )
    return record


def _problem(record: object) -> str:
    """What is wrong with a parsed outbox line ("" when nothing)."""
    if not isinstance(record, dict):
        return "not a JSON object"
    missing = [name for name in RECORD_FIELDS if name not in record]
    if missing:
        return f"missing field {missing[0]!r}"
    if not isinstance(record["targets"], list):
        return "field 'targets' is not a list"
    try:
        dt.datetime.fromisoformat(str(record["time"]))
    except ValueError:
        return f"field 'time' is not an ISO date-time: {record['time']!r}"
    return ""


def _as_listed(record: dict[str, object]) -> dict[str, object]:
    """An outbox line in the shape of a get_groupmsg_list_v2 item, with its targets."""
    return {
        "msgid": record["msgid"],
        "creator": record["sender"],
        "create_time": dt.datetime.fromisoformat(str(record["time"])).timestamp(),
        "text": {"content": record["content"]},
        "targets": record["targets"],
        **_listed_attachments(record),
    }


def _listed_attachments(record: dict[str, object]) -> dict[str, object]:
    """A line's attachments as WeCom lists them (by `msgtype`); nothing for a text alone."""
    attachments = record.get("attachments")
    if not isinstance(attachments, list):
        return {}
    return {
        "attachments": [{"msgtype": a.get("kind"), **a} for a in attachments if isinstance(a, dict)]
    }
