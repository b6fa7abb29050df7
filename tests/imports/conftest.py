"""Shared by the import tests: the shipped samples and a helper that imports one file."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT
from imports.run import FileResult, import_files

SAMPLES = PROJECT_ROOT / "docs" / "samples"
# Every shipped sample, in the order a new chain brings them in.
SAMPLE_FILES = (
    ("stores", "stores.csv"),
    ("staff", "staff.csv"),
    ("products", "products.csv"),
    ("members", "members.jsonl"),
    ("orders", "orders.csv"),
    ("deals", "deals.xlsx"),
    ("campaign", "campaign.xlsx"),
)


def run(kind: str, path: Path, **options: bool) -> FileResult:
    """Import one file; its result."""
    [result] = import_files(kind, [path], **options)
    return result


@pytest.fixture
def catalogue(database_url: str) -> str:
    """Stores, staff, products and members from the samples."""
    for kind, name in SAMPLE_FILES[:4]:
        assert run(kind, SAMPLES / name).written
    return database_url
