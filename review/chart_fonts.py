"""Chinese labels on the review charts: a CJK font when one is installed, labels it can draw."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from matplotlib import font_manager
from matplotlib.font_manager import FontProperties

# Families with Chinese glyphs that matplotlib may already know (macOS, Windows, common Linux packages).
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Microsoft YaHei",
    "SimHei",
    "Heiti SC",
    "Droid Sans Fallback",
)


@cache
def label_font() -> FontProperties:
    """A font with Chinese glyphs when one is installed, else matplotlib's default sans."""
    path = _cjk_font_file()
    return (
        FontProperties(fname=path, size=8) if path else FontProperties(family="DejaVu Sans", size=8)
    )


def drawable_labels(values: Iterable[Any], limit: int = 28) -> list[str]:
    """Labels the chart font can draw: missing glyphs shown as "…" (never a warning), "#n" when nothing is left."""
    labels = []
    for number, value in enumerate(values, start=1):
        text = ""
        for character in " ".join(str(value if value is not None else "—").split()):
            if _has_glyph(character):
                text += character
            elif not text.endswith("…"):
                text += "…"
        if not any(character.isalnum() for character in text):
            text = f"#{number}"
        if len(text) > limit:
            text = text[: limit - 1] + "…"
        labels.append(text.replace("$", r"\$"))  # "$" would start mathtext
    return labels


def _cjk_font_file() -> str | None:
    for entry in font_manager.fontManager.ttflist:
        if entry.name in CJK_FAMILIES:
            return str(entry.fname)
    fc_list = shutil.which("fc-list")
    if not fc_list:
        return None
    try:
        listing = subprocess.run(
            [fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    files = [line.split(":")[0].strip() for line in listing.splitlines()]
    usable = [f for f in files if Path(f).suffix.lower() in {".ttf", ".otf", ".ttc"}]
    # Regular sans faces read best at 8 pt; bold and serif (Ming) faces only when nothing else is.
    usable.sort(
        key=lambda f: ("bold" in f.lower(), not any(s in f.lower() for s in ("sans", "hei")), f)
    )
    return usable[0] if usable else None


@cache
def _has_glyph(character: str) -> bool:
    font = font_manager.get_font(font_manager.findfont(label_font()))
    return character.isspace() or font.get_char_index(ord(character)) != 0
