"""Validate front matter against the schema, turning each pydantic error into plain words on its line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from soplang.problems import ParsedSop
from soplang.spec import SopFrontMatter, SopSpec, did_you_mean

_TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list, e.g. [a, b]",
    "dict_type": "a set of `key: value` lines",
    "model_type": "a set of `key: value` lines",
    "model_attributes_type": "a set of `key: value` lines",
}


def _model_at(loc: Iterable[str | int]) -> type[BaseModel] | None:
    """The pydantic model whose keys live at `loc` in the front matter."""
    model: type[BaseModel] | None = SopFrontMatter
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int) or part.isdigit():
            continue
        info = model.model_fields.get(part)
        model = _model_in(info.annotation) if info else None
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside an annotation such as `Schedule | None` or `list[Step]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(_model_in, get_args(annotation)) if m is not None), None)


def _field_name(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in loc if not isinstance(p, int) and not str(p).isdigit())


def _line_for(loc: tuple[str | int, ...], lines: dict[str, int]) -> int:
    """The line of the deepest key of `loc` that the file has (pydantic adds type tags we skip)."""
    found: list[str] = []
    line = 1
    for part in loc:
        candidate = ".".join((*found, str(part)))
        if candidate in lines:
            found.append(str(part))
            line = lines[candidate]
    return line


def _message(error: ErrorDetails) -> str:
    loc = tuple(p for p in error["loc"] if p not in ("function-after", "function-before"))
    name = _field_name(loc)
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = list(model.model_fields) if model else []
        where = f" under `{_field_name(loc[:-1])}`" if loc[:-1] else ""
        return (
            f"unknown key `{loc[-1]}`{where}{did_you_mean(str(loc[-1]), allowed)}; "
            f"allowed keys: {', '.join(allowed)}"
        )
    if kind == "missing":
        return f"missing required key `{name}`"
    if kind == "value_error":
        return f"`{name}`: {error['msg'].removeprefix('Value error, ')}"
    if kind in _TYPE_WORDS:
        return f"`{name}` should be {_TYPE_WORDS[kind]}, not {_show(value)}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"`{name}` {error['msg'].lower().replace('input ', '')} (got {_show(value)})"
    if kind == "too_short":
        return f"`{name}` must not be empty"
    if kind in ("string_too_long", "too_long"):
        return f"`{name}` is too long: {error['msg'].lower()}"
    return f"`{name}`: {error['msg']}"


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a set of keys"
    if isinstance(value, list):
        return "a list"
    return f"`{value}`"


def _missing_line(loc: tuple[str | int, ...], lines: dict[str, int]) -> int:
    return _line_for(loc[:-1], lines) if len(loc) > 1 else 1


def validate_front_matter(parsed: ParsedSop, data: dict[str, Any]) -> None:
    """Set `parsed.spec` from the front matter `data`, or add each schema error on its line."""
    try:
        front = SopFrontMatter.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            line = (
                _missing_line(loc, parsed.lines)
                if error["type"] == "missing"
                else _line_for(loc, parsed.lines)
            )
            parsed.add(line, _message(error))
        return
    parsed.spec = SopSpec.model_validate(
        {
            **front.model_dump(),
            "path": parsed.path,
            "lines": parsed.lines,
            "sections": parsed.sections,
        }
    )
