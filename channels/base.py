"""The small interface every delivery channel implements, and WeCom's mass-message limits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Literal, Protocol, runtime_checkable

from channels.attachments import Attachment, check_attachments
from core.errors import ChannelRejected

MAX_TEXT_BYTES = 4000
MAX_CHAT_IDS = 2000
MAX_EXTERNAL_USERIDS = 10000
CHAT_TYPES = ("group", "single")

# The errcodes WeCom answers for the same mistakes; channels that refuse before
# sending reuse them so a Delivery row looks the same whoever refused.
ERRCODE_TOO_MANY_TARGETS = 40058
ERRCODE_NO_TARGETS = 41048
ERRCODE_EMPTY_TEXT = 44004
ERRCODE_TEXT_TOO_LONG = 45002


@dataclass(frozen=True)
class MassMessage:
    """One mass-message task: `content` (and its attachments) from `sender` to chat ids (group)
    or external_userids (single)."""

    chat_type: Literal["group", "single"]
    sender: str
    targets: tuple[str, ...]
    content: str
    attachments: tuple[Attachment, ...] = ()

    def __post_init__(self) -> None:
        if self.chat_type not in CHAT_TYPES:
            raise ValueError(f"chat_type must be 'group' or 'single', not {self.chat_type!r}")
        if not isinstance(self.targets, tuple):
            object.__setattr__(self, "targets", tuple(self.targets))

    @property
    def content_bytes(self) -> int:
        """Length of the text in UTF-8 bytes, the unit WeCom's limit is counted in."""
        return len(self.content.encode("utf-8"))


@dataclass(frozen=True)
class SendReceipt:
    """What a channel answered for one mass message: its msgid and the targets it refused."""

    msgid: str | None
    fail_list: tuple[str, ...] = ()


@runtime_checkable
class Channel(Protocol):
    """A delivery channel: sends mass messages within WeCom's limits."""

    name: str

    def max_targets(self, chat_type: str) -> int:
        """How many targets one `send_mass` call may carry for `chat_type`."""
        ...

    def send_mass(self, message: MassMessage) -> SendReceipt:
        """Create one mass-message task; raises a `ChannelError` on failure."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


def max_targets(chat_type: str) -> int:
    """WeCom's per-call target limit: 2000 chat ids for groups, 10000 external_userids for single."""
    if chat_type == "group":
        return MAX_CHAT_IDS
    if chat_type == "single":
        return MAX_EXTERNAL_USERIDS
    raise ValueError(f"chat_type must be 'group' or 'single', not {chat_type!r}")


def chunk_targets(targets: Iterable[str], size: int) -> Iterator[tuple[str, ...]]:
    """Split `targets` into tuples of at most `size`, in order."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    it = iter(targets)
    while chunk := tuple(islice(it, size)):
        yield chunk


def check_message(message: MassMessage) -> None:
    """Refuse, before any call, a message WeCom would reject for its size or target count."""
    if not message.targets:
        raise ChannelRejected("refused before sending: no targets", errcode=ERRCODE_NO_TARGETS)
    limit = max_targets(message.chat_type)
    if len(message.targets) > limit:
        raise ChannelRejected(
            f"refused before sending: {len(message.targets)} targets, "
            f"at most {limit} for chat_type {message.chat_type!r}",
            errcode=ERRCODE_TOO_MANY_TARGETS,
        )
    if not message.content.strip():
        raise ChannelRejected("refused before sending: empty text", errcode=ERRCODE_EMPTY_TEXT)
    if message.content_bytes > MAX_TEXT_BYTES:
        raise ChannelRejected(
            f"refused before sending: text is {message.content_bytes} bytes, "
            f"at most {MAX_TEXT_BYTES} (UTF-8)",
            errcode=ERRCODE_TEXT_TOO_LONG,
        )
    check_attachments(message.attachments)
