"""Load SOP files into `SopSpec`s; every problem names the file and line it is on."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ValidationError

from core.errors import SopDefinitionError
from soplang.safe_yaml import SopYamlLoader, YamlLimitError
from soplang.spec import (
    IMPLICIT_STEP,
    Section,
    SopFrontMatter,
    SopSpec,
    did_you_mean,
)

Severity = Literal["error", "warning"]
FENCE = "---"
README = "README.md"
MAX_FILE_BYTES = 256 * 1024  # SOP files are a few KB; anything bigger is refused before it is read


@dataclass(frozen=True, order=True)
class Problem:
    """One finding about an SOP file; `str()` is `path:line: severity: message`."""

    path: str
    line: int
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


@dataclass
class ParsedSop:
    """What could be read from one file: the spec when it is valid, its sections, its problems."""

    path: Path
    spec: SopSpec | None = None
    data: dict[str, Any] | None = None
    lines: dict[str, int] = field(default_factory=dict)
    sections: dict[str, Section] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, line: int, message: str, severity: Severity = "error") -> None:
        self.problems.append(Problem(str(self.path), line, severity, message))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]


# ---------------------------------------------------------------- YAML with line numbers


def _yaml_with_lines(text: str, first_line: int, parsed: ParsedSop) -> Any:
    """Parse YAML text that starts on file line `first_line`, recording each key's line."""
    loader = SopYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _record_lines(node, (), first_line, parsed)
        return loader.construct_document(node)
    except (ValueError, OverflowError) as exc:  # PyYAML's scanner on e.g. "\UFFFFFFFF"
        mark = yaml.Mark("front matter", 0, loader.line, loader.column, None, None)
        problem = f"cannot read this value ({exc})"
        raise yaml.constructor.ConstructorError(problem=problem, problem_mark=mark) from None
    finally:
        loader.dispose()


def _record_lines(node: yaml.Node, path: tuple[str, ...], offset: int, parsed: ParsedSop) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + offset
            dotted = ".".join((*path, key))
            if key in seen:
                parsed.add(
                    line, f"`{dotted}` is written twice (first on line {seen[key]}); keep one"
                )
            seen[key] = line
            parsed.lines[dotted] = line
            _record_lines(value_node, (*path, key), offset, parsed)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            dotted = ".".join((*path, str(index)))
            parsed.lines[dotted] = item.start_mark.line + offset
            _record_lines(item, (*path, str(index)), offset, parsed)


def _yaml_error(exc: yaml.YAMLError, first_line: int, text: str) -> tuple[int, str]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + first_line if mark else first_line
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    message = f"front matter is not valid YAML: {context + ', ' if context else ''}{problem}"
    source_lines = text.splitlines()
    offending = (
        source_lines[line - first_line] if 0 <= line - first_line < len(source_lines) else ""
    )
    if isinstance(exc, yaml.constructor.ConstructorError):
        pass  # the value itself is wrong; the hints below are about YAML syntax
    elif "\t" in problem or "\t" in offending:
        message += "; indent with spaces, not tabs"
    elif "cron" in offending or "alias" in problem or "*" in offending:
        message += '; quote values that start with * or contain `: `, e.g. cron: "30 8 * * *"'
    elif ":" in problem or "mapping" in problem:
        message += "; check the indentation and that each line is `key: value`"
    return line, message


# ---------------------------------------------------------------- front matter and sections


def _size(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"


def _read_bytes(path: Path, parsed: ParsedSop) -> bytes | None:
    """At most MAX_FILE_BYTES of a regular file; a bigger or special file is refused unread."""
    too_big = f"an SOP file may be at most {_size(MAX_FILE_BYTES)}; is this really an SOP?"
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


def _read_text(path: Path, parsed: ParsedSop) -> str | None:
    raw = _read_bytes(path, parsed)
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
    if not text.strip():
        parsed.add(1, "the file is empty; an SOP starts with a `---` front matter block")
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _split(text: str, parsed: ParsedSop) -> tuple[str, list[str], int] | None:
    """The front matter text, the body lines and the file line the body starts on."""
    lines = text.split("\n")
    if lines[0].rstrip() != FENCE:
        parsed.add(
            1, "the file must start with a `---` line opening the front matter (id, title, kind …)"
        )
        return None
    for index in range(1, len(lines)):
        if lines[index].rstrip() == FENCE:
            return "\n".join(lines[1:index]), lines[index + 1 :], index + 2
    parsed.add(1, "the front matter opened on line 1 is never closed; add a `---` line after it")
    return None


_HEADING = re.compile(r"^##(?!#)\s*(.*?)\s*$")


def _sections(body: list[str], body_first_line: int, parsed: ParsedSop) -> None:
    """Split the body at `## name` headings into sections; text before the first one is ignored."""
    current: tuple[str, int] | None = None
    collected: list[str] = []
    stray_line: int | None = None

    def close() -> None:
        if current is None:
            return
        name, heading_line = current
        if name in parsed.sections:
            first = parsed.sections[name].heading_line
            parsed.add(heading_line, f"section `## {name}` appears twice (first on line {first})")
            return
        text = "\n".join(collected)
        parsed.sections[name] = Section(
            text=text, first_line=heading_line + 1, heading_line=heading_line
        )
        if not text.strip():
            parsed.add(
                heading_line, f"section `## {name}` is empty; write the message text under it"
            )

    for offset, line in enumerate(body):
        number = body_first_line + offset
        heading = _HEADING.match(line)
        if heading:
            close()
            current, collected = (heading.group(1), number), []
            if not heading.group(1):
                parsed.add(number, "a `##` heading needs the step name, e.g. `## main`")
        elif current is None:
            if line.strip() and stray_line is None:
                stray_line = number
        else:
            collected.append(line)
    close()
    if stray_line is not None:
        parsed.add(
            stray_line,
            "text before the first `## step` heading is not sent; move it under a heading or delete it",
            "warning",
        )


# ---------------------------------------------------------------- pydantic errors in plain words


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


def _pydantic_message(error: Any) -> str:
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


def _validate(parsed: ParsedSop, data: dict[str, Any]) -> None:
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
            parsed.add(line, _pydantic_message(error))
        return
    parsed.spec = SopSpec.model_validate(
        {
            **front.model_dump(),
            "path": parsed.path,
            "lines": parsed.lines,
            "sections": parsed.sections,
        }
    )


# ---------------------------------------------------------------- rules across fields


def _check_kind_rules(spec: SopSpec, parsed: ParsedSop) -> None:
    """Steps, schedule, trigger and audience rules that depend on the SOP's kind and channel."""
    line = spec.line_of
    if spec.kind == "community" and spec.schedule is None:
        parsed.add(
            line("kind"), 'a community SOP needs a `schedule` (cron: "30 8 * * *", days: everyday)'
        )
    if spec.kind in ("promotion", "trigger") and spec.schedule is not None:
        why = (
            "run relative to the campaign start (`at`)"
            if spec.kind == "promotion"
            else "run when the event happens"
        )
        parsed.add(line("schedule"), f"{spec.kind} SOPs {why}; remove `schedule`")
    if spec.kind == "trigger" and spec.on is None:
        parsed.add(
            line("kind"),
            "a trigger SOP needs `on:` naming its event (contact.added, favourite.price_drop, order.shipped)",
        )
    if spec.kind != "trigger" and spec.on is not None:
        parsed.add(line("on"), "`on` is only for kind: trigger; remove it")
    if spec.kind in ("lifecycle", "trigger") and spec.channel != "customer":
        parsed.add(
            line("channel"),
            f"{spec.kind} SOPs talk to one customer at a time; use `channel: customer`",
        )
    if spec.kind == "community" and spec.channel == "customer":
        parsed.add(
            line("channel"),
            "community SOPs post to groups; use `channel: group` or `channel: robot`",
        )
    _check_audience(spec, parsed)
    for index in range(len(spec.step_list)):
        _check_step_timing(spec, index, parsed)


def _check_audience(spec: SopSpec, parsed: ParsedSop) -> None:
    audience = spec.audience
    wants = "customers" if spec.channel == "customer" else "groups"
    has = getattr(audience, wants, None) if audience else None
    if has is None and spec.kind != "trigger":
        parsed.add(
            spec.line_of("audience"),
            f"channel `{spec.channel}` needs `audience.{wants}`"
            + (
                " (e.g. groups: {theme: [生鲜]})"
                if wants == "groups"
                else " (e.g. customers: {stage: [new]})"
            ),
        )
    other = "groups" if wants == "customers" else "customers"
    if audience is not None and getattr(audience, other) is not None:
        parsed.add(
            spec.line_of("audience", other),
            f"channel `{spec.channel}` sends to {wants}; remove `audience.{other}`",
        )
    if spec.kind == "lifecycle" and not (
        audience and audience.customers and audience.customers.stage
    ):
        parsed.add(
            spec.line_of("audience"),
            "a lifecycle SOP follows customers through a stage: set `audience.customers.stage`",
        )


_TIMING_RULES: dict[str, tuple[tuple[str, ...], str]] = {
    "promotion": (
        ("at",),
        'needs `at` relative to the campaign start, e.g. {name: burst, at: "0d 10:00"}',
    ),
    "lifecycle": (
        ("after", "send_at"),
        'needs `after` and `send_at`, e.g. {name: coupon, after: 3d, send_at: "10:00"}',
    ),
    "community": ((), "runs on the schedule"),
    "trigger": ((), "runs when the event happens"),
}


def _check_step_timing(spec: SopSpec, index: int, parsed: ParsedSop) -> None:
    step = spec.step_list[index]
    required, how = _TIMING_RULES[spec.kind]
    keys = ("steps", index) if spec.steps else ("kind",)
    if any(getattr(step, key) is None for key in required):
        parsed.add(spec.line_of(*keys), f"{spec.kind} step `{step.name}` {how}")
    for key in ("at", "after", "send_at"):
        if key not in required and getattr(step, key) is not None:
            parsed.add(
                spec.line_of(*keys, key),
                f"`{key}` does not apply to a {spec.kind} step ({how}); remove it",
            )


def _check_steps_and_sections(spec: SopSpec, parsed: ParsedSop) -> None:
    seen: dict[str, int] = {}
    for index, name in enumerate(spec.step_names):
        line = spec.line_of("steps", index) if spec.steps else 1
        if name in seen:
            parsed.add(line, f"step `{name}` is declared twice (first on line {seen[name]})")
            continue
        seen[name] = line
        if name not in spec.sections:
            what = (
                f"step `{name}`" if spec.steps else f"without `steps:` the one step is `{name}`; it"
            )
            parsed.add(line, f"{what} has no `## {name}` section: add one with its message text")
    for name, section in spec.sections.items():
        if name and name not in seen:
            hint = did_you_mean(name, seen)
            if spec.steps:
                message = f"section `## {name}` matches no step{hint}; steps are: {', '.join(seen)}"
            else:
                message = f"section `## {name}` matches no step{hint}; without `steps:` the only section is `## {IMPLICIT_STEP}`"
            parsed.add(section.heading_line, message)


# ---------------------------------------------------------------- public API


def parse_sop(path: str | Path) -> ParsedSop:
    """Read one SOP file, collecting every problem instead of stopping at the first."""
    parsed = ParsedSop(path=Path(path))
    text = _read_text(parsed.path, parsed)
    if text is None:
        return parsed
    split = _split(text, parsed)
    if split is None:
        return parsed
    front, body, body_first_line = split
    _sections(body, body_first_line, parsed)
    try:
        data = _yaml_with_lines(front, 2, parsed)
    except YamlLimitError as exc:
        parsed.add(2 + (exc.problem_mark.line if exc.problem_mark else 0), str(exc.problem))
        return parsed
    except yaml.YAMLError as exc:
        parsed.add(*_yaml_error(exc, 2, front))
        return parsed
    if not isinstance(data, dict):
        got = (
            "nothing"
            if data is None
            else "a single value"
            if not isinstance(data, list)
            else "a list"
        )
        parsed.add(2, f"the front matter must be `key: value` lines (id, title, kind …), not {got}")
        return parsed
    parsed.data = data
    bad_keys = [k for k in data if not isinstance(k, str)]
    for key in bad_keys:
        parsed.add(
            parsed.lines.get(str(key), 2), f"key `{key}` must be a word such as `id` or `title`"
        )
    if bad_keys:
        return parsed
    _validate(parsed, data)
    if parsed.spec is not None:
        _check_kind_rules(parsed.spec, parsed)
        _check_steps_and_sections(parsed.spec, parsed)
    return parsed


def sop_files(dir_or_paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """The SOP files under a directory (recursively, README.md excluded) or in a list of paths."""
    items = [dir_or_paths] if isinstance(dir_or_paths, str | Path) else list(dir_or_paths)
    found: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found.extend(p for p in sorted(item.rglob("*.md")) if p.name != README)
        else:
            found.append(item)
    return found


def duplicate_id_problems(parsed: Iterable[ParsedSop]) -> Iterator[Problem]:
    """An error on each file whose `id` an earlier file already uses."""
    first: dict[str, ParsedSop] = {}
    for item in parsed:
        if item.spec is None:
            continue
        sop_id = item.spec.id
        if sop_id in first:
            other = first[sop_id]
            yield Problem(
                str(item.path),
                item.spec.line_of("id"),
                "error",
                f"id `{sop_id}` is already used by {other.path}:{other.spec.line_of('id') if other.spec else 1}; ids must be unique",
            )
        else:
            first[sop_id] = item


def _raise_on_errors(problems: list[Problem], what: str) -> None:
    errors = sorted(p for p in problems if p.is_error)
    if errors:
        raise SopDefinitionError(
            f"{what}: {len(errors)} problem(s)\n" + "\n".join(map(str, errors)),
            problems=[str(p) for p in errors],
        )


def load_sop(path: str | Path) -> SopSpec:
    """The valid `SopSpec` in `path`, or `SopDefinitionError` listing `path:line: error: …` problems."""
    parsed = parse_sop(path)
    _raise_on_errors(parsed.problems, f"{path} is not a valid SOP")
    assert parsed.spec is not None
    return parsed.spec


def load_sops(dir_or_paths: str | Path | Iterable[str | Path]) -> list[SopSpec]:
    """Every SOP in a directory or list of files; one error lists all problems of all files."""
    parsed = [parse_sop(path) for path in sop_files(dir_or_paths)]
    problems = [p for item in parsed for p in item.problems] + list(duplicate_id_problems(parsed))
    _raise_on_errors(problems, "invalid SOP files")
    return [item.spec for item in parsed if item.spec is not None]


def find_sop(sop_id: str, sop_dir: str | Path) -> SopSpec:
    """The SOP with `sop_id` under `sop_dir` (its file is normally `<id>.md`)."""
    for path in sop_files(sop_dir):
        if path.stem == sop_id:
            spec = load_sop(path)
            if spec.id == sop_id:
                return spec
    specs = load_sops(sop_dir)
    for spec in specs:
        if spec.id == sop_id:
            return spec
    known = [spec.id for spec in specs]
    raise SopDefinitionError(
        f"no SOP with id `{sop_id}` in {sop_dir}{did_you_mean(sop_id, known)}; known: {', '.join(sorted(known))}",
        sop_id=sop_id,
    )
