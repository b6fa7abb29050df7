"""Import files of one kind: every row validated, one transaction per file, rejects on request.

By default a file with any bad row writes nothing; with `skip_bad` its good rows are written and
the bad ones returned for the rejects file. `dry_run` does all the work and rolls it back.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session

from core.clock import utcnow
from core.settings import get_settings
from imports import orders_fast, orders_staged
from imports.catalogue import CampaignKind, Deals, Products
from imports.columns import HeaderMap, map_header
from imports.errors import FileRefused
from imports.kind import (
    Cells,
    Context,
    Counts,
    Item,
    Kind,
    refuse_long_cells,
    safe_key,
    show_key,
)
from imports.orders import Orders
from imports.people import Members, StaffKind, Stores
from imports.readers import Record, Source, open_source
from models.db import get_engine

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (Stores(), StaffKind(), Products(), Members(), Orders(), Deals(), CampaignKind())
}
CHUNK = 2000  # items validated and written together
ENCODINGS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "gb18030": "GBK/GB18030"}
Progress = Callable[[str], None]


@dataclass
class Rejected:
    """A row left out, with where it was and why."""

    where: str
    line: int
    reason: str
    cells: dict[str, Any]


@dataclass
class FileResult:
    """What importing one file did."""

    path: Path
    encoding: str = ""
    counts: Counts = field(default_factory=Counts)
    problems: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def import_files(
    kind: str,
    paths: list[Path],
    *,
    dry_run: bool = False,
    skip_bad: bool = False,
    url: str | None = None,
    progress: Progress | None = None,
    fast_path: bool = True,
    staged: bool = True,
) -> list[FileResult]:
    """Import each file in its own transaction, in the order given; `fast_path=False` reads an
    order CSV the general way, `staged=False` without the SQL staging on SQLite (the same result,
    slower: for comparison)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; use one of: {', '.join(KINDS)}")
    ctx = Context(now=utcnow(), tz=get_settings().timezone)
    results = []
    for path in paths:
        result = FileResult(path)
        try:
            options = (dry_run, skip_bad, url, progress, fast_path, staged and fast_path)
            _import_file(KINDS[kind], path, ctx, result, *options)
        except FileRefused as refused:
            result.problems.extend(refused.problems)
            result.written = False
        results.append(result)
        ctx.cache.clear()  # a rolled-back file must not leave its ids behind
    return results


def _import_file(
    kind: Kind,
    path: Path,
    ctx: Context,
    result: FileResult,
    dry_run: bool,
    skip_bad: bool,
    url: str | None,
    progress: Progress | None,
    fast_path: bool,
    staged: bool,
) -> None:
    source, records = open_source(path)
    result.encoding = ENCODINGS.get(source.encoding, source.encoding)
    fast = fast_path and orders_fast.applies(kind, source)
    if fast:
        first = orders_fast.header_of(source)
        header = Record(first[0], dict.fromkeys(first[1], "")) if first else None
    else:
        header = next(records, None)
    if header is None:
        raise FileRefused([f"{path}: error: the file is empty; the first row names the columns"])
    columns = _check_header(kind.name, source, header)
    if columns.ignored:
        result.counts.notes.append(f"columns not used: {', '.join(columns.ignored)}")
    with Session(get_engine(url), expire_on_commit=False) as session, _fewer_collections():
        try:
            if staged and orders_staged.applies(kind, source, session):
                shown = (lambda rows: progress(f"{path}: {rows} rows read")) if progress else None
                staged = orders_staged.load(
                    source, columns, ctx, result.counts, session=session, progress=shown
                )
            else:
                staged = False
            if staged:
                chunks: Iterator[list[Item]] = iter(())
            elif fast:
                chunks = orders_fast.fast_items(kind, source, columns, ctx, result.counts)
            else:
                chunks = _items(kind, source, records, columns, list(header.cells), ctx, result)
            for chunk in chunks:
                _chunk(kind, chunk, source, ctx, result, skip_bad, session)
                if progress:
                    progress(f"{path}: {result.counts.rows} rows read")
            if result.problems and not skip_bad:
                session.rollback()
                return
            kind.finish(ctx, result.counts, session=session)
            if dry_run:
                session.rollback()
            else:
                session.commit()
                result.written = True
        except BaseException:
            session.rollback()
            raise


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often while a file streams: its rows make millions of
    short-lived, acyclic objects, and frequent collections cost a third of the parse time."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], 200_000), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _check_header(kind: str, source: Source, header: Record) -> HeaderMap:
    columns = map_header(kind, header.cells)
    line = max(header.line, 1)
    problems = [
        f"{source.where(line)}: error: missing column {c.names[0]} "
        f"(name it any of: {', '.join(c.names)})"
        for c in columns.missing
    ]
    problems += [
        f"{source.where(line)}: error: columns {a!r} and {b!r} both give {f}; keep one"
        for f, a, b in columns.doubled
    ]
    if problems and source.format != "jsonl":
        raise FileRefused(problems)
    return columns


def _cells(record: Record, columns: HeaderMap, kind: str, headers: dict[str, str]) -> Cells:
    fields = columns.fields
    if any(name not in fields for name in record.cells):  # a JSON object with its own keys
        fields = map_header(kind, record.cells).fields
        headers = {f: name for name, f in fields.items()}
    by_field = {fields[name]: value for name, value in record.cells.items() if name in fields}
    return Cells(by_field, headers)


def _items(
    kind: Kind,
    source: Source,
    records: Iterator[Record],
    columns: HeaderMap,
    names: list[str],
    ctx: Context,
    result: FileResult,
) -> Iterator[list[Item]]:
    """The file's items in chunks; a grouped item (an order) is never split between chunks."""
    seen: dict[Any, int] = {}
    chunk: list[Item] = []
    current: Item | None = None
    headers = {f: name for name, f in columns.fields.items()}
    pairs = list(columns.fields.items())
    unread = [name for name in names if name not in columns.fields]
    text_only = (
        source.format == "csv"
    )  # every cell is already a str, every row has the header's keys
    rows = 0
    for record in records:
        rows += 1
        result.counts.rows = rows
        if text_only:
            raw = record.cells
        else:
            raw = {k: ("" if v is None else str(v)) for k, v in record.cells.items()}
        if record.error is not None:
            chunk.append(Item(None, [record.line], [raw], None, [(record.line, record.error)]))
            continue
        if text_only:
            cells = Cells({f: raw[n] for n, f in pairs if n in raw}, headers)
            others = [(n, raw.get(n)) for n in unread] if unread else []
        else:
            cells = _cells(record, columns, kind.name, headers)
            others = [(n, v) for n, v in record.cells.items() if n not in columns.fields]
        refuse_long_cells(cells, others)
        parsed = kind.parse(cells, ctx)
        key = kind.key(parsed) if not cells.errors else safe_key(kind, parsed)
        problems = [(record.line, e) for e in cells.errors]
        if kind.grouped and current is not None and key is not None and key == current.key:
            current.join(kind, record.line, raw, parsed, problems)
            continue
        if key is not None and key in seen:
            what = "its rows must be consecutive" if kind.grouped else "each must appear once"
            problems.append(
                (record.line, f"{show_key(key)} is already on line {seen[key]} ({what})")
            )
            key = None
        elif key is not None:
            seen[key] = record.line
        current = Item(key, [record.line], [raw], parsed, problems)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
        chunk.append(current)
    if chunk:
        yield chunk


def _chunk(
    kind: Kind,
    items: list[Item],
    source: Source,
    ctx: Context,
    result: FileResult,
    skip_bad: bool,
    session: Session,
) -> None:
    checked = [i for i in items if not i.problems]
    kind.resolve(checked, ctx, session=session)
    good = [i for i in items if not i.problems]
    for item in items:
        if not item.problems:
            continue
        for line, message in item.problems:
            result.problems.append(f"{source.where(line)}: error: {message}")
        reasons = dict(item.problems[::-1])  # the first problem of each line
        first = item.problems[0]
        for line, row in zip(item.lines, item.rows, strict=True):
            cells = row if isinstance(row, dict) else row.as_dict()
            reason = reasons.get(line) or f"{show_key(item.key)} has a bad row (line {first[0]})"
            result.rejected.append(Rejected(str(source.path), line, reason, cells))
        result.counts.rejected += len(item.lines)
    if good and (skip_bad or not result.problems):
        kind.write(good, ctx, result.counts, session=session)
