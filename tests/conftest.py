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


@pytest.fixture
def fake_plugins(monkeypatch):
    """A hermetic registry (only Tether's core plugin) plus a `fake` connector type whose
    options are validated by the model given; its methods are never called."""
    import tether
    from tether.connector import Connector, Options
    from tether.plugins import LOAD_ENV, Plugins

    def make(options_model: type[Options] = Options) -> Plugins:
        def never(self, *args):
            raise AssertionError("the fake connector only carries options")

        fake = type("FakeConnector", (Connector,), {
            "type_name": "fake", "options_model": options_model,
            "pull": never, "read_annotations": never, "apply": never})

        class FakePlugin:
            @tether.hookimpl
            def tether_connector_types(self):
                return {"fake": fake}

        monkeypatch.setenv(LOAD_ENV, "core")
        registry = Plugins()
        registry.register(FakePlugin(), name="fakeplug")
        return registry

    return make
