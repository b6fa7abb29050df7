"""Read an ops-edited file's text safely: size-limited, regular files only, UTF-8 with the bad byte named."""

from __future__ import annotations

import stat
from pathlib import Path

from soplang.problems import ParsedSop

MAX_FILE_BYTES = 256 * 1024  # SOP files are a few KB; anything bigger is refused before it is read


def _size(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"


def _read_bytes(path: Path, parsed: ParsedSop, what: str, kind: str) -> bytes | None:
    """At most MAX_FILE_BYTES of a regular file; a bigger or special file is refused unread."""
    too_big = f"{what} may be at most {_size(MAX_FILE_BYTES)}; is this really {kind}?"
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            parsed.add(1, "cannot read the file: it is not a regular file")
            return None
        if info.st_size > MAX_FILE_BYTES:
            parsed.add(1, f"the file is {_size(info.st_size)}; {too_big}")
            return None
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        parsed.add(1, f"cannot read the file: {exc.strerror or exc}")
        return None
    if len(raw) > MAX_FILE_BYTES:
        parsed.add(1, f"the file is over {_size(MAX_FILE_BYTES)}; {too_big}")
        return None
    return raw


def read_text(
    path: Path,
    parsed: ParsedSop,
    *,
    what: str = "an SOP file",
    kind: str = "an SOP",
    empty_ok: bool = False,
) -> str | None:
    """The file's text with `\\n` line ends, or None after adding the reason to `parsed`;
    `what` and `kind` name the file in the problems."""
    raw = _read_bytes(path, parsed, what, kind)
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        parsed.add(
            line,
            f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {column}: "
            f"{exc.reason}); save it as UTF-8 (无BOM) in your editor",
        )
        return None
    if "\x00" in text:
        parsed.add(
            text[: text.index("\x00")].count("\n") + 1,
            "the file contains a NUL byte; is it really a text file?",
        )
        return None
    if not text.strip() and not empty_ok:
        parsed.add(1, "the file is empty; an SOP starts with a `---` front matter block")
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")
