"""Load SOP files into fully checked `SopSpec`s: each file parsed once and held to every lint check."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from core.errors import SopDefinitionError
from soplang.folder import duplicate_id_problems, sop_files
from soplang.lint import lint_file
from soplang.problems import ParsedSop, Problem
from soplang.spec import SopSpec, did_you_mean


def _refuse(errors: list[Problem], message: str, sop_id: str | None = None) -> SopDefinitionError:
    return SopDefinitionError(
        f"{message}\n" + "\n".join(map(str, errors)),
        problems=[str(p) for p in errors],
        sop_id=sop_id,
    )


def checked_spec(parsed: ParsedSop, sop_id: str | None = None) -> SopSpec:
    """The spec of a linted file, or `SopDefinitionError` with its errors as lint reports them."""
    errors = sorted(parsed.errors)
    if errors or parsed.spec is None:
        headline = (
            f"{parsed.path} has {len(errors)} error(s); fix them (see `sopflow lint`) and re-run:"
        )
        raise _refuse(errors, headline, sop_id)
    return parsed.spec


def load_sop(sop: str | Path, sop_dir: str | Path | None = None) -> SopSpec:
    """The fully checked SOP in file `sop`, or, given `sop_dir`, the SOP whose id is `sop` in it.

    The file is parsed once and must pass every check `sopflow lint` makes (front matter, kind
    rules, sections, template syntax and variables, a sample render within WeCom's limits,
    absolute claims, the calendar); otherwise `SopDefinitionError` carries each error as
    `path:line: error: message`.
    """
    if sop_dir is None:
        return checked_spec(lint_file(sop))
    sop_id = str(sop)
    for path in sop_files(sop_dir):
        if path.stem == sop_id:
            spec = checked_spec(lint_file(path), sop_id)
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


def find_sop(sop_id: str, sop_dir: str | Path) -> SopSpec:
    """The fully checked SOP with `sop_id` under `sop_dir` (its file is normally `<id>.md`)."""
    return load_sop(sop_id, sop_dir)


def load_sops(dir_or_paths: str | Path | Iterable[str | Path]) -> list[SopSpec]:
    """Every SOP in a directory or list of files, fully checked; one error lists all problems."""
    parsed = [lint_file(path) for path in sop_files(dir_or_paths)]
    problems = [p for item in parsed for p in item.problems] + list(duplicate_id_problems(parsed))
    errors = sorted(p for p in problems if p.is_error)
    if errors:
        raise _refuse(errors, f"invalid SOP files: {len(errors)} problem(s)")
    return [item.spec for item in parsed if item.spec is not None]
