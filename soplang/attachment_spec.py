"""A step's `attachments:` in the SOP file: images, links, mini-program cards, videos and files."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator

from channels.attachments import KINDS, MAX_ATTACHMENTS

MEDIA_DIR = "media"
TEMPLATE_MARKS = ("{{", "{%")


def is_template(value: str | None) -> bool:
    """Whether a field's value is rendered per target (it contains `{{ … }}` or `{% … %}`)."""
    return bool(value) and any(mark in value for mark in TEMPLATE_MARKS)  # type: ignore[operator]


def is_url(value: str) -> bool:
    return value.startswith(("https://", "http://"))


def path_problem(value: str) -> str | None:
    """Why a local file reference is refused (outside the SOP folder), or None when it is fine."""
    if any(ord(ch) < 32 for ch in value):
        return f"`{value!r}` has a control character; write the file's name as it is on disk"
    if value.startswith(("/", "\\")) or (len(value) > 1 and value[1] == ":"):
        return (
            f"`{value}` is an absolute path; write a file under the SOP folder, e.g. media/eggs.jpg"
        )
    if ".." in value.replace("\\", "/").split("/"):
        return f"`{value}` points outside the SOP folder (`..`); put the file under sop/media/"
    return None


def _text(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
    return value


Text = Annotated[str, AfterValidator(_text)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class LinkSpec(_Strict):
    """A link card (图文链接): title ≤ 128 bytes, description ≤ 512 bytes, a picture URL."""

    title: Text
    url: Text
    description: Text | None = None
    picture: Text | None = None


class MiniprogramSpec(_Strict):
    """A mini-program card: title ≤ 64 bytes, an appid linked to the company, a page, a cover file."""

    title: Text
    appid: Text
    page: Text
    picture: Text


class AttachmentSpec(_Strict):
    """One entry of `attachments:`, exactly one of its keys: `- image: media/eggs.jpg`."""

    image: Text | None = None
    link: LinkSpec | None = None
    miniprogram: MiniprogramSpec | None = None
    video: Text | None = None
    file: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(
                f"write an attachment as `kind: value`, e.g. `- image: media/eggs.jpg`, not `{value}`; "
                f"kinds: {', '.join(KINDS)}"
            )
        if isinstance(value, dict):
            kinds = [key for key in value if key in KINDS and value[key] is not None]
            if len(kinds) > 1:
                raise ValueError(
                    f"one attachment per `-` entry; this one has {', '.join(kinds)}: "
                    "give each its own `- ` line"
                )
            if not value:
                raise ValueError(f"an attachment needs one of: {', '.join(KINDS)}")
        return value

    @model_validator(mode="after")
    def _has_kind(self) -> AttachmentSpec:
        if not any(getattr(self, kind) is not None for kind in KINDS):
            raise ValueError(f"an attachment needs one of: {', '.join(KINDS)}")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in KINDS if getattr(self, kind) is not None)

    def fields(self) -> dict[str, str]:
        """The written values, unrendered: a card's fields, or `{"file": …}` for an image (a URL or
        a media/ path), a video or a file."""
        value = getattr(self, self.kind)
        if isinstance(value, BaseModel):
            return {k: v for k, v in value.model_dump().items() if v is not None}
        return {"file": value}


def _at_most_nine(value: list[Any]) -> list[Any]:
    if len(value) > MAX_ATTACHMENTS:
        raise ValueError(
            f"{len(value)} attachments, WeCom takes at most {MAX_ATTACHMENTS} per message; "
            "drop some or split the step"
        )
    return value


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


Attachments = Annotated[
    list[AttachmentSpec], BeforeValidator(_as_list), AfterValidator(_at_most_nine)
]
