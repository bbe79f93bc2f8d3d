"""Shared fixtures: a private copy of an example workspace, and a fixed clock."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOW = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def files_only(tmp_path: Path) -> Path:
    """A copy of examples/files-only that a test may sync into."""
    target = tmp_path / "files-only"
    shutil.copytree(EXAMPLES / "files-only", target)
    return target


@pytest.fixture
def clock():
    return lambda: NOW
