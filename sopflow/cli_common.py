"""What every command shares: plain output, one `error:` line and exit code, SOP errors as lint prints them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer


def say(text: str) -> None:
    """Print one line for the operator."""
    typer.echo(text)


def fail(text: str, code: int = 1) -> NoReturn:
    """Print `error: text` on stderr and exit with `code`."""
    typer.echo(f"error: {text}", err=True)
    raise typer.Exit(code)


@contextmanager
def sop_errors() -> Iterator[None]:
    """An SOP file's problems one per line (a template's as `path:line: error: …` too), any other
    SopError as one `error:` line; exit 1."""
    from core.errors import SopDefinitionError, SopError, TemplateError

    try:
        yield
    except SopDefinitionError as error:
        for problem in error.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(1) from None
    except TemplateError as error:
        path, line = getattr(error, "path", None), getattr(error, "line", None)
        if path is None or line is None:
            fail(str(error))
        typer.echo(f"{path}:{line}: error: {getattr(error, 'detail', error.message)}", err=True)
        raise typer.Exit(1) from None
    except SopError as error:
        fail(str(error))


def day_option(value: str | None, option: str) -> dt.date | None:
    """The date an option gives as YYYY-MM-DD (None when absent); anything else is an error."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not a date; write it as YYYY-MM-DD")
