"""Lint a step's attachments against WeCom's limits: sizes, files under the SOP folder, linked appids."""

from __future__ import annotations

from pathlib import Path

from channels.attachments import (
    MAX_LINK_DESC_BYTES,
    MAX_LINK_TITLE_BYTES,
    MAX_MINIPROGRAM_TITLE_BYTES,
    attachment_problems,
)
from channels.media import IMAGE_HEADS, is_inside
from core.settings import get_settings
from soplang.attachment_render import compile_attachments
from soplang.attachment_spec import MEDIA_DIR, AttachmentSpec, is_template, is_url, path_problem
from soplang.context import sample_context
from soplang.problems import ParsedSop
from soplang.spec import SopSpec
from soplang.template import RenderFailure

MB = 1024 * 1024
# What media/upload takes (developer.work.weixin.qq.com/document/path/96484): more than 5 bytes;
# image JPG/PNG ≤ 10 MB, video MP4 ≤ 10 MB, file ≤ 20 MB.
MIN_FILE_BYTES = 6
MAX_FILE_BYTES = {"image": 10 * MB, "video": 10 * MB, "file": 20 * MB}
SUFFIXES = {"image": (".jpg", ".jpeg", ".png"), "video": (".mp4",)}
BYTE_LIMITS = {
    ("link", "title"): MAX_LINK_TITLE_BYTES,
    ("link", "description"): MAX_LINK_DESC_BYTES,
    ("miniprogram", "title"): MAX_MINIPROGRAM_TITLE_BYTES,
}


def sop_root(path: Path | None) -> Path:
    """The SOP folder files are relative to: SOPFLOW_SOP_DIR when the file is in it, else the
    file's folder or the one above it (a family folder such as community/), whichever has a
    `media/` folder, else the file's own folder."""
    configured = get_settings().sop_dir.resolve()
    if path is None:
        return configured
    here = Path(path).resolve()
    if here.is_relative_to(configured):
        return configured
    for folder in (here.parent, here.parent.parent):
        if (folder / MEDIA_DIR).is_dir():
            return folder
    return here.parent


def check_attachments(spec: SopSpec, parsed: ParsedSop) -> None:
    """Every problem of every step's `attachments:`, each on its own line."""
    root = sop_root(spec.path)
    for index, step in enumerate(spec.steps or ()):
        if not step.attachments:
            continue
        where = ("steps", index, "attachments")
        # A moments step's `robot` only reminds staff (soplang/staff_audience.py); its post carries them.
        if spec.channel == "robot" or (step.robot and spec.channel != "moments"):
            parsed.add(
                spec.line_of(*where),
                "a group robot posts text only; remove `attachments` or send through "
                "channel group/customer",
            )
            continue
        for number, entry in enumerate(step.attachments):
            _check_entry(spec, parsed, entry, (*where, number), root)
        _check_sample(spec, parsed, step.name, where)


def _check_entry(
    spec: SopSpec, parsed: ParsedSop, entry: AttachmentSpec, where: tuple, root: Path
) -> None:
    kind = entry.kind
    for name, value in entry.fields().items():
        line = spec.line_of(*where, kind, name) if name != "file" else spec.line_of(*where, kind)
        if is_template(value):
            continue  # checked on the sample render
        limit = BYTE_LIMITS.get((kind, name))
        size = len(value.encode("utf-8"))
        if limit is not None and size > limit:
            parsed.add(
                line, f"{kind} {name} is {size} bytes; WeCom allows {limit} (UTF-8): shorten it"
            )
        if name == "appid":
            _check_appid(parsed, line, value)
        elif name == "url" and not is_url(value):
            parsed.add(line, f"{kind} url `{value}` must start with https:// or http://")
        elif name == "file" and kind == "image" and is_url(value):
            continue  # a picture on the web: WeCom fetches it itself
        elif name == "file" or (name == "picture" and not is_url(value)):
            _check_file(parsed, line, value, "image" if name == "picture" else kind, root)


def _check_appid(parsed: ParsedSop, line: int, appid: str) -> None:
    linked = get_settings().linked_appids
    if appid not in linked:
        parsed.add(
            line,
            f"mini-program appid `{appid}` is not in SOPFLOW_MINIPROGRAM_APPIDS "
            f"({', '.join(linked) or 'empty'}); link the mini-program to the company in WeCom's "
            "admin console and add its appid there (WeCom refuses others: 90206)",
        )


def _check_file(parsed: ParsedSop, line: int, value: str, kind: str, root: Path) -> None:
    if is_url(value):
        parsed.add(line, f"a {kind} is sent from a file: put it under {MEDIA_DIR}/, not `{value}`")
        return
    problem = path_problem(value)
    if problem:
        parsed.add(line, problem)
        return
    full = root / value
    if not is_inside(full, root):
        parsed.add(line, f"`{value}` points outside the SOP folder (a link?); copy the file in")
        return
    if not full.is_file():
        parsed.add(line, f"file `{value}` does not exist in {root}; add it under {MEDIA_DIR}/")
        return
    suffixes = SUFFIXES.get(kind)
    if suffixes and full.suffix.lower() not in suffixes:
        parsed.add(
            line, f"a {kind} must be {'/'.join(s[1:].upper() for s in suffixes)}, not `{value}`"
        )
        return
    size = full.stat().st_size
    limit = MAX_FILE_BYTES.get(kind, MAX_FILE_BYTES["file"])
    if size < MIN_FILE_BYTES or size > limit:
        parsed.add(
            line,
            f"`{value}` is {size:,} bytes; WeCom takes a {kind} of more than 5 bytes and at most "
            f"{limit // MB} MB",
        )
    elif kind in ("image", "video") and not looks_like(full, kind):
        parsed.add(line, f"`{value}` is not really a {full.suffix[1:].upper()} file; re-export it")


def looks_like(path: Path, kind: str) -> bool:
    """Whether the file's first bytes are those of a JPEG/PNG image or an MP4 video."""
    with path.open("rb") as file:
        head = file.read(12)
    if kind == "image":
        return head.startswith(IMAGE_HEADS)
    return head[4:8] == b"ftyp"


def _check_sample(spec: SopSpec, parsed: ParsedSop, step: str, where: tuple) -> None:
    """Templated fields: rendered with the sample context, held to WeCom's limits."""
    if spec.kind == "trigger" and spec.on is None:
        return
    try:
        compiled = compile_attachments(spec, step)
        if not compiled.templated:
            return
        context = sample_context(
            spec.kind, spec.channel, step, spec.on, sop={"id": spec.id, "title": spec.title}
        )
        rendered = compiled.render(context)
    except RenderFailure as exc:
        parsed.add(exc.line or spec.line_of(*where), f"{exc.detail} (rendering the sample context)")
        return
    for errcode, reason in attachment_problems(rendered):
        parsed.add(spec.line_of(*where), f"{reason} with the sample context (WeCom: {errcode})")
    for attachment in rendered:
        if attachment.kind == "miniprogram" and attachment.appid:
            if attachment.appid not in get_settings().linked_appids:
                _check_appid(parsed, spec.line_of(*where), attachment.appid)
