"""Read an import file as rows of cells: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030), .xlsx, JSON Lines.

Hostile or wrong files are refused with one clear line, never a traceback: binary data, files
over the size caps, zip bombs dressed as .xlsx, cells larger than a cell can be.
"""

from __future__ import annotations

import codecs
import csv
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imports.errors import FileRefused

MAX_TEXT_BYTES = 2 * 1024**3  # a CSV / JSONL file (3,000,000 order lines are ~200 MB)
MAX_XLSX_BYTES = 100 * 1024**2  # an .xlsx as stored
MAX_XLSX_UNPACKED = 1024**3  # all of its parts unpacked
MAX_ZIP_RATIO = 200  # unpacked / packed per part; sheets compress ~10x, zip bombs ~1000x
MAX_CELL_BYTES = 100_000  # the csv module's field limit: a bigger cell stops the file
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass
class Record:
    """One row: its line (row of the sheet), its cells by header, or why it could not be read."""

    line: int
    cells: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Source:
    """An opened import file: where its rows are, how it was decoded, its header and rows."""

    path: Path
    format: str  # csv | xlsx | jsonl
    encoding: str  # utf-8, utf-8-sig, gb18030, or the sheet for xlsx
    sheet: str | None = None

    def where(self, line: int) -> str:
        """`file:line`, or `file[Sheet]:row` for a sheet."""
        sheet = f"[{self.sheet}]" if self.sheet else ""
        return f"{self.path}{sheet}:{line}"

    def refuse(self, line: int, message: str) -> FileRefused:
        return FileRefused([f"{self.where(line)}: error: {message}"])


def open_source(path: Path) -> tuple[Source, Iterator[Record]]:
    """The file's description and its rows; the first record is the header (line of it)."""
    if not path.is_file():
        raise FileRefused([f"{path}: error: no such file"])
    suffix = path.suffix.lower()
    size = path.stat().st_size
    if suffix == ".xlsx":
        return _open_xlsx(path, size)
    if suffix == ".xls":
        raise FileRefused([f"{path}: error: .xls (Excel 97) is not read; save it as .xlsx or CSV"])
    if suffix not in TEXT_SUFFIXES + JSONL_SUFFIXES:
        raise FileRefused(
            [f"{path}: error: unknown file type {suffix or '(none)'}; use .csv, .xlsx or .jsonl"]
        )
    if size > MAX_TEXT_BYTES:
        raise FileRefused([f"{path}: error: {size:,} bytes is over the {MAX_TEXT_BYTES:,} cap"])
    encoding = detect_encoding(path)
    kind = "jsonl" if suffix in JSONL_SUFFIXES else "csv"
    source = Source(path, kind, encoding)
    rows = _jsonl_rows(source) if kind == "jsonl" else _csv_rows(source)
    return source, rows


def detect_encoding(path: Path) -> str:
    """utf-8-sig with a BOM, else utf-8 when the whole file decodes strictly, else gb18030."""
    with path.open("rb") as handle:
        head = handle.read(8192)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise FileRefused([f"{path}: error: UTF-16 text; save it as CSV UTF-8 (逗号分隔)"])
        if b"\x00" in head:
            raise FileRefused([f"{path}: error: a binary file, not CSV or JSON Lines text"])
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        chunk = head
        try:
            while chunk:
                decoder.decode(chunk)
                chunk = handle.read(1 << 20)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8"


def _text_lines(source: Source) -> Iterator[str]:
    """The file's text; a byte sequence no encoding explains stops it with its line."""
    line = 1
    try:
        with source.path.open(encoding=source.encoding, newline="") as handle:
            for text in handle:
                if "\x00" in text:
                    raise source.refuse(line, "binary data (NUL bytes) in a text file")
                yield text
                line += text.count("\n")
    except UnicodeDecodeError as error:
        raise source.refuse(
            line, f"bytes that are neither UTF-8 nor GBK/GB18030 ({error.reason})"
        ) from None


def csv_cells(source: Source) -> Iterator[tuple[int, list[str]]]:
    """The CSV file's non-blank rows as (line, cells), the header first; unreadable CSV stops it."""
    csv.field_size_limit(MAX_CELL_BYTES)
    tabs = source.path.suffix.lower() == ".tsv"
    reader = csv.reader(_text_lines(source), delimiter="\t" if tabs else ",")
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise source.refuse(
                start, f"unreadable CSV ({error}); nothing after it was read"
            ) from None
        line, start = start, reader.line_num + 1
        if any(cell.strip() for cell in cells):
            yield line, cells


def _csv_rows(source: Source) -> Iterator[Record]:
    header: list[str] | None = None
    for line, cells in csv_cells(source):
        if header is None:
            header = [cell.strip() for cell in cells]
            yield Record(line, dict.fromkeys(header, ""))
            continue
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
            yield Record(line, error=f"{len(cells)} cells but the header names {len(header)}")
            continue
        yield Record(line, dict(zip(header, cells, strict=False)))


def _jsonl_rows(source: Source) -> Iterator[Record]:
    """The header (keys of the first object) first, then each line's row or why it is unreadable;
    lines unreadable before the first object wait for the header, which callers take first."""
    waiting: list[Record] | None = []  # None once the header is out
    for number, text in enumerate(_text_lines(source), start=1):
        if not text.strip():
            continue
        record = _jsonl_record(number, text)
        if waiting is not None and record.error is not None:
            waiting.append(record)
            continue
        if waiting is not None:
            yield Record(0, dict.fromkeys(record.cells, ""))
            yield from waiting
            waiting = None
        yield record
    if waiting is not None:
        yield Record(0, {})
        yield from waiting


def _jsonl_record(number: int, text: str) -> Record:
    """One line of JSON Lines as a row, or why it is not one."""
    if len(text) > MAX_CELL_BYTES * 10:
        return Record(number, error=f"a line of {len(text):,} characters is too long")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return Record(number, error=f"not JSON ({error.msg} at column {error.colno})")
    except RecursionError:  # `[[[[…` nested deeper than Python's parser goes
        return Record(number, error="JSON nested too deep; each line must be one flat object {…}")
    if not isinstance(value, dict):
        return Record(number, error="each line must be one JSON object {…}")
    return Record(number, {str(k): v for k, v in value.items()})


def _open_xlsx(path: Path, size: int) -> tuple[Source, Iterator[Record]]:
    if size > MAX_XLSX_BYTES:
        raise FileRefused([f"{path}: error: {size:,} bytes is over the {MAX_XLSX_BYTES:,} cap"])
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        raise FileRefused([f"{path}: error: not an .xlsx workbook (not a zip archive)"]) from None
    unpacked = sum(part.file_size for part in parts)
    bomb = [p.filename for p in parts if p.file_size > MAX_ZIP_RATIO * max(p.compress_size, 1)]
    if unpacked > MAX_XLSX_UNPACKED or (bomb and unpacked > 10 * 1024**2):
        raise FileRefused(
            [f"{path}: error: unpacks to {unpacked:,} bytes (a zip bomb?); refused unread"]
        )
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds on a damaged workbook
        raise FileRefused([f"{path}: error: not a readable .xlsx workbook ({error})"]) from None
    sheet = book.worksheets[0]
    source = Source(path, "xlsx", f"sheet {sheet.title}", sheet=sheet.title)
    return source, _xlsx_rows(source, book, sheet)


def _xlsx_rows(source: Source, book: Any, sheet: Any) -> Iterator[Record]:
    header: list[str] | None = None
    try:
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            if not any(v is not None and str(v).strip() for v in values):
                continue
            if header is None:
                header = [str(v).strip() if v is not None else "" for v in values]
                yield Record(number, dict.fromkeys(header, ""))
                continue
            yield Record(number, dict(zip(header, values, strict=False)))
    except Exception as error:  # a damaged sheet part: say where reading stopped
        raise source.refuse(0, f"the sheet could not be read ({error})") from None
    finally:
        book.close()
