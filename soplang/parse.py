"""Parse one SOP file into a `ParsedSop`: its spec when the front matter is valid, every problem found."""

from __future__ import annotations

from pathlib import Path

import yaml

from soplang.event_payloads import check_when
from soplang.file_text import read_text
from soplang.kind_rules import check_kind_rules, check_steps_and_sections
from soplang.problems import ParsedSop
from soplang.safe_yaml import YamlLimitError
from soplang.schema_errors import validate_front_matter
from soplang.sections import read_sections, split_front_matter
from soplang.yaml_lines import top_level_scalars, yaml_error, yaml_with_lines

FRONT_MATTER_LINE = 2  # the file line after the opening `---`


def parse_sop(path: str | Path) -> ParsedSop:
    """Read one SOP file, collecting every problem instead of stopping at the first.

    This checks the file and its front matter; `lint.check_parsed` adds the template checks.
    """
    parsed = ParsedSop(path=Path(path))
    text = read_text(parsed.path, parsed)
    if text is None:
        return parsed
    split = split_front_matter(text, parsed)
    if split is None:
        return parsed
    front, body, body_first_line = split
    read_sections(body, body_first_line, parsed)
    first = FRONT_MATTER_LINE
    try:
        data = yaml_with_lines(front, first, parsed)
    except YamlLimitError as exc:
        parsed.add(first + (exc.problem_mark.line if exc.problem_mark else 0), str(exc.problem))
        parsed.guessed = top_level_scalars(front)
        return parsed
    except yaml.YAMLError as exc:
        parsed.add(*yaml_error(exc, first, front))
        parsed.guessed = top_level_scalars(front)
        return parsed
    if not isinstance(data, dict):
        got = (
            "nothing"
            if data is None
            else "a single value"
            if not isinstance(data, list)
            else "a list"
        )
        parsed.add(
            first, f"the front matter must be `key: value` lines (id, title, kind …), not {got}"
        )
        return parsed
    parsed.data = data
    bad_keys = [k for k in data if not isinstance(k, str)]
    for key in bad_keys:
        parsed.add(
            parsed.lines.get(str(key), first), f"key `{key}` must be a word such as `id` or `title`"
        )
    if bad_keys:
        return parsed
    validate_front_matter(parsed, data)
    if parsed.spec is not None:
        check_kind_rules(parsed.spec, parsed)
        check_when(parsed.spec, parsed)
        check_steps_and_sections(parsed.spec, parsed)
    return parsed
