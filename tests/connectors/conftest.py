"""The ``driver`` fixture: every test in this folder runs once per tracker sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from driver import DRIVERS, make


@pytest.fixture(params=sorted(DRIVERS))
def driver(request, tmp_path: Path, monkeypatch):
    drv = make(request.param, tmp_path)
    monkeypatch.setenv(drv.token_variable, "good")
    yield drv
    drv.server.stop()
