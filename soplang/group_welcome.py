"""sop/group-welcome.yaml: the group welcome template (进群欢迎语) as ops write it, read and checked."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from channels.attachments import Attachment, attachment_problems
from channels.media import is_inside
from core.errors import SopDefinitionError
from core.settings import get_settings
from soplang.attachment_spec import MEDIA_DIR, AttachmentSpec, is_url, path_problem
from soplang.derive_files import NodeReader
from soplang.lint_attachments import looks_like
from soplang.problems import Problem

GROUP_WELCOME_FILE = "group-welcome.yaml"
MAX_TEXT_BYTES = 3000  # group_welcome_template: text.content at most 3000 bytes
KINDS = ("image", "link", "miniprogram")  # one of them beside the text
KEYS = ("text", "attachment")
SUFFIXES = (".jpg", ".jpeg", ".png")
MAX_PICTURE_BYTES = 2 * 1024 * 1024  # an image goes up with uploadimg (permanent URL): 2 MB
EXAMPLE = "text: 欢迎 %NICKNAME% 加入本群"


@dataclass(frozen=True)
class GroupWelcome:
    """The template: its text (`%NICKNAME%` becomes each newcomer's name) and one attachment."""

    path: Path
    text: str
    attachment: Attachment | None

    @property
    def name(self) -> str:
        """The template's name in sopflow's records: the file's name without `.yaml`."""
        return self.path.stem

    def content_hash(self, root: Path) -> str:
        """A hash of what WeCom would get: text, attachment fields and its files' bytes."""
        parts = {
            "text": self.text,
            "attachment": self.attachment.as_dict() if self.attachment else None,
        }
        digest = hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode())
        if self.attachment is not None:
            for value in (self.attachment.path, self.attachment.picture):
                if value and not is_url(value):
                    digest.update((root / value).read_bytes())
        return digest.hexdigest()


def _attachment(reader: NodeReader, node: yaml.Node, root: Path) -> Attachment | None:
    data = yaml.safe_load(yaml.serialize(node))
    try:
        spec = AttachmentSpec.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        reader.add(node, f"attachment {where}: {first['msg']}".replace(" : ", ": "))
        return None
    if spec.kind not in KINDS:
        reader.add(
            node, f"a group welcome takes one {', '.join(KINDS)} beside its text, not a {spec.kind}"
        )
        return None
    fields = spec.fields()
    if spec.kind == "image":
        item = Attachment("image", path=fields["file"])
    else:
        item = Attachment(spec.kind, **fields)  # type: ignore[arg-type]
    for _, reason in attachment_problems([item]):
        reader.add(node, reason.split(": ", 1)[-1])
    if item.kind == "miniprogram" and item.appid not in get_settings().linked_appids:
        reader.add(
            node,
            f"mini-program appid `{item.appid}` is not in SOPFLOW_MINIPROGRAM_APPIDS; link it to "
            "the company in WeCom's admin console and add it there (WeCom refuses others: 90206)",
        )
    for value in (item.path, item.picture if item.kind != "link" else None):
        if value is not None:
            _check_picture(reader, _scalar_of(node, value) or node, value, root)
    return item


def _scalar_of(node: yaml.Node, value: str) -> yaml.Node | None:
    """The value's own node under `node` (for its line), or None."""
    if isinstance(node, yaml.ScalarNode):
        return node if str(node.value).strip() == value else None
    if isinstance(node, yaml.MappingNode):
        return next((found for _, c in node.value if (found := _scalar_of(c, value))), None)
    return None


def _check_picture(reader: NodeReader, node: yaml.Node, value: str, root: Path) -> None:
    problem = path_problem(value)
    if is_url(value):
        problem = f"a group welcome picture is uploaded from a file: put it under {MEDIA_DIR}/, not `{value}`"
    elif problem is None and not is_inside(root / value, root):
        problem = f"`{value}` points outside the SOP folder (a link?); copy the file in"
    elif problem is None and not (root / value).is_file():
        problem = f"file `{value}` does not exist in {root}; add it under {MEDIA_DIR}/"
    elif problem is None and (root / value).suffix.lower() not in SUFFIXES:
        problem = f"a picture must be JPG or PNG, not `{value}`"
    elif problem is None and not 5 < (root / value).stat().st_size <= MAX_PICTURE_BYTES:
        problem = f"`{value}` must be more than 5 bytes and at most 2 MB"
    elif problem is None and not looks_like(root / value, "image"):
        problem = (
            f"`{value}` is not really a {(root / value).suffix[1:].upper()} file; re-export it"
        )
    if problem:
        reader.add(node, problem)


def read_group_welcome(path: Path) -> tuple[GroupWelcome | None, list[Problem]]:
    """The file's template and its problems, each on its line (no file: nothing, no problems)."""
    if not path.exists():
        return None, []
    reader = NodeReader(path)
    root = reader.root("the group welcome", "group welcome file", EXAMPLE)
    if root is None:
        if not reader.problems:
            reader.add(None, f"the file is empty; write `{EXAMPLE}` (or delete the file)")
        return None, reader.problems
    text, attachment, text_node = "", None, None
    for key, value in reader.pairs(root, "key"):
        name = str(key.value)
        if name == "text":
            text_node = key
            text = str(value.value).strip() if isinstance(value, yaml.ScalarNode) else ""
            if not text:
                reader.add(key, f"text needs the welcome's words, e.g. `{EXAMPLE}`")
        elif name == "attachment":
            attachment = _attachment(reader, value, path.parent)
        else:
            reader.add(key, f"unknown key `{name}`; a group welcome has {' and '.join(KEYS)}")
    size = len(text.encode("utf-8"))
    if size > MAX_TEXT_BYTES:
        reader.add(
            text_node, f"text is {size} bytes; WeCom allows {MAX_TEXT_BYTES} (UTF-8): shorten it"
        )
    if text_node is None:
        reader.add(None, f"a group welcome needs its `text:`, e.g. `{EXAMPLE}`")
    if reader.problems:
        return None, reader.problems
    return GroupWelcome(path, text, attachment), []


def group_welcome_problems(sop_dir: Path) -> list[Problem]:
    """The problems of the folder's group-welcome.yaml (for `sopflow lint`)."""
    return read_group_welcome(sop_dir / GROUP_WELCOME_FILE)[1]


def load_group_welcome(sop_dir: Path) -> GroupWelcome | None:
    """The folder's group welcome, or None without a file; a bad file raises with every problem."""
    welcome, problems = read_group_welcome(sop_dir / GROUP_WELCOME_FILE)
    if problems:
        raise SopDefinitionError("\n".join(str(p) for p in problems))
    return welcome
