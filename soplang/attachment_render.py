"""A step's attachments rendered per target through the one sandbox, beside its text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from channels.attachments import Attachment
from soplang.attachment_spec import AttachmentSpec, is_template, is_url, path_problem
from soplang.spec import SopSpec
from soplang.template import CompiledStep, RenderFailure, compile_template, render


@dataclass(frozen=True)
class CompiledAttachment:
    """One `attachments:` entry: its kind and each field, literal text or a compiled template."""

    kind: str
    fields: tuple[tuple[str, str | CompiledStep], ...]
    line: int


@dataclass(frozen=True)
class StepAttachments:
    """A step's attachments, compiled once; `render` gives a target's tuple of `Attachment`s.

    Targets whose attachments render alike share one tuple object, so a batch holds few of them
    and recording stores each distinct set once.
    """

    sop_id: str
    step: str
    path: str | None
    items: tuple[CompiledAttachment, ...] = ()
    _seen: dict[tuple[Any, ...], tuple[Attachment, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __bool__(self) -> bool:
        return bool(self.items)

    @property
    def templated(self) -> bool:
        return any(isinstance(v, CompiledStep) for item in self.items for _, v in item.fields)

    @property
    def sources(self) -> str:
        """The template text of every templated field (for the fields a segment reads)."""
        return "\n".join(
            v.source for item in self.items for _, v in item.fields if isinstance(v, CompiledStep)
        )

    def render(self, context: Mapping[str, Any] | None = None) -> tuple[Attachment, ...]:
        """The attachments for one target; an image, video or file rendering empty is left out."""
        if not self.items:
            return ()
        values = tuple(
            tuple(v if isinstance(v, str) else render(v, context or {}) for _, v in item.fields)
            for item in self.items
        )
        known = self._seen.get(values)
        if known is None:
            known = tuple(
                a
                for item, rendered in zip(self.items, values, strict=True)
                if (a := self._attachment(item, rendered)) is not None
            )
            if len(self._seen) < 4096:
                self._seen[values] = known
        return known

    def _attachment(self, item: CompiledAttachment, values: tuple[str, ...]) -> Attachment | None:
        named = dict(zip((name for name, _ in item.fields), values, strict=True))
        if "file" in named:
            value = named["file"].strip()
            if not value:
                return None
            if item.kind == "image" and is_url(value):
                return Attachment("image", url=value)
            self._check_path(item, value)
            return Attachment(item.kind, path=value)  # type: ignore[arg-type]
        if item.kind == "miniprogram":
            self._check_path(item, named.get("picture", ""))
        return Attachment(item.kind, **{k: v for k, v in named.items() if v != ""})  # type: ignore[arg-type]

    def _check_path(self, item: CompiledAttachment, value: str) -> None:
        problem = path_problem(value) or (
            f"`{value}` is a URL; a {item.kind} is sent from a file under media/"
            if is_url(value)
            else None
        )
        if problem:
            raise RenderFailure(
                f"attachment ({item.kind}): {problem}",
                sop_id=self.sop_id,
                step=self.step,
                path=self.path,
                line=item.line,
            )


def attachment_specs(spec: SopSpec, step: str) -> list[AttachmentSpec]:
    """The `attachments:` a step declares (none for the implicit step or an unknown one)."""
    for candidate in spec.steps or ():
        if candidate.name == step:
            return list(candidate.attachments)
    return []


def compile_attachments(spec: SopSpec, step: str) -> StepAttachments:
    """The step's attachments compiled: each templated field through the sandbox, named by line."""
    index = next((i for i, s in enumerate(spec.steps or ()) if s.name == step), None)
    path = str(spec.path) if spec.path else None
    items = []
    for number, entry in enumerate(attachment_specs(spec, step)):
        where = ("steps", index or 0, "attachments", number, entry.kind)
        fields: list[tuple[str, str | CompiledStep]] = []
        for name, value in entry.fields().items():
            line = spec.line_of(*where, name) if name != "file" else spec.line_of(*where)
            fields.append(
                (
                    name,
                    compile_template(
                        value,
                        sop_id=spec.id,
                        step=f"{step} attachment {number + 1} {name}",
                        path=path,
                        first_line=line,
                    )
                    if is_template(value)
                    else value,
                )
            )
        items.append(CompiledAttachment(entry.kind, tuple(fields), spec.line_of(*where)))
    return StepAttachments(spec.id, step, path, tuple(items))


def card_lines(attachments: Sequence[Attachment], sop_dir: Path | None = None) -> list[str]:
    """Each attachment as the line an operator reads (`[图片] media/eggs.jpg`), a local file with
    where it is on disk when `sop_dir` is given."""
    lines = []
    for attachment in attachments:
        line = attachment.describe()
        local = attachment.path or (
            attachment.picture if attachment.kind == "miniprogram" else None
        )
        if sop_dir is not None and local and not is_url(local):
            line += f"  ({Path(sop_dir) / local})"
        lines.append(line)
    return lines


def with_cards(text: str, attachments: Sequence[Attachment], sop_dir: Path | None = None) -> str:
    """A rendered text followed by its attachments, one line each (samples and previews)."""
    if not attachments:
        return text
    return "\n".join(
        [text, "", f"附件 attachments ({len(attachments)}):", *card_lines(attachments, sop_dir)]
    )
