"""Hostile and wrong files get one clear error line and exit 1, never a traceback; nothing is written."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sopflow.cli import app
from tests.imports.conftest import run


def zip_bomb(path: Path) -> Path:
    """An .xlsx-shaped zip whose sheet unpacks ~1000x (50 MB from ~50 KB)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<a>" + b" " * 50_000_000 + b"</a>")
    return path


CASES = {
    "binary.csv": (
        lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50),
        "binary file",
    ),
    "utf16.csv": (lambda p: p.write_text("sku,name\n", encoding="utf-16"), "UTF-16"),
    "fake.xlsx": (lambda p: p.write_text("sku,name\n"), "not a zip archive"),
    "bomb.xlsx": (zip_bomb, "zip bomb"),
    "old.xls": (lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0"), "save it as .xlsx or CSV"),
    "notes.pdf": (lambda p: p.write_bytes(b"%PDF-1.4"), "unknown file type .pdf"),
    "empty.csv": (lambda p: p.write_text(""), "the file is empty"),
    "deep.jsonl": (lambda p: p.write_text("[" * 50_000 + "]" * 50_000 + "\n"), "nested too deep"),
    "huge-cell.csv": (
        lambda p: p.write_text("code,name,city\nS1," + "x" * 200_000 + ",北京\n"),
        "field larger than field limit",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_hostile_file_is_refused_with_one_clear_line(
    name: str, database_url: str, tmp_path: Path
) -> None:
    make, expected = CASES[name]
    path = tmp_path / name
    make(path)
    result = CliRunner().invoke(app, ["import", "stores", str(path)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{path}" in result.output and "error:" in result.output
    assert expected in result.output
    assert "Traceback" not in result.output


def test_a_long_cell_is_a_row_error_and_the_other_rows_are_still_checked(
    database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "stores.csv"
    path.write_text("code,name,city\nS1," + "店" * 5000 + ",北京\nS2,,上海\n", "utf-8")
    result = run("stores", path)
    assert [p.split(": error: ")[0] for p in result.problems] == [f"{path}:2", f"{path}:3"]
    assert "5000 characters long" in result.problems[0] or "5,000 characters" in result.problems[0]
    assert not result.written


def test_an_unreadable_first_json_line_is_reported_not_taken_for_the_header(
    database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "stores.jsonl"
    path.write_text('not json\n{"code": "S1", "name": "一店", "city": "北京"}\n', "utf-8")
    result = run("stores", path)
    assert [p.split(": error: ")[0] for p in result.problems] == [f"{path}:1"]
    assert "not JSON" in result.problems[0]
    assert not result.written
