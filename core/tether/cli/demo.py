"""`tether demo`: a shipped example workspace, its trackers served by sandboxes on loopback."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path

import yaml

from tether.codec import parse_datetime
from tether.config.load import load_config
from tether.connector import Sandbox
from tether.errors import TetherError
from tether.plugins import Plugins
from tether.workspace import Workspace, load_workspace

DEMO_EXAMPLE = "cost-save-mirage"
SEED_DIR = "seed"  # an example's sandbox seeds; everything else is its workspace
MORNING = time(9, 0, tzinfo=UTC)
DEMO_FILE = "demo.yaml"  # in SEED_DIR: `today: 2025-06-16`, the date the example is set on


@dataclass
class Demo:
    """A running demo: the workspace to sync and the sandboxes serving its sources."""

    workspace: Workspace
    urls: dict[str, str]
    sandboxes: dict[str, Sandbox] = field(default_factory=dict)  # by source name
    options: dict[str, dict] = field(default_factory=dict)  # per source: what points it here
    today: datetime | None = None  # the example's fixed "now" (its findings depend on it)

    def now(self) -> datetime:
        """The demo's clock: the example's date when it has one, else the real time."""
        return self.today or datetime.now(UTC)

    def stop(self) -> None:
        for box in self.sandboxes.values():
            box.stop()


def start_demo(workdir: Path, plugins: Plugins, example: str = DEMO_EXAMPLE) -> Demo:
    """Copy ``example`` into ``workdir`` (keeping what is there), start a sandbox per source
    from the example's seeds (or the state a previous run left), and load the workspace;
    ``today`` is the date the example is set on, when it declares one."""
    shipped = files("tether.examples")
    folder = shipped / example
    if not is_example(folder):
        names = sorted(p.name for p in shipped.iterdir() if is_example(p))
        raise TetherError(f"There is no example called '{example}'; the examples are "
                          f"{', '.join(names)}.")
    with as_file(folder) as source_dir:
        today = example_today(source_dir / SEED_DIR / DEMO_FILE)
        copy_missing(source_dir, workdir, skip={SEED_DIR})
        config = load_config(workdir, plugins)
        kinds = plugins.sandbox_types()
        sandboxes: dict[str, Sandbox] = {}
        overrides: dict[str, dict] = {}
        try:
            for source in config.sources:
                if source.type not in kinds or not (source_dir / SEED_DIR).is_dir():
                    continue  # an export (files) needs no sandbox
                box = sandboxes[source.name] = kinds[source.type]()
                overrides[source.name] = box.start(source_dir / SEED_DIR,
                                                   workdir / ".sandbox" / source.name)
                os.environ.update(box.env)
            workspace = load_workspace(workdir, plugins, overrides)
        except BaseException:
            for box in sandboxes.values():
                box.stop()
            raise
    urls = {name: options.get("url", "") for name, options in overrides.items()}
    return Demo(workspace, urls, sandboxes, overrides, today)


def is_example(folder: Traversable) -> bool:
    """Whether a folder under ``tether.examples`` is an example workspace (it holds a
    tether.yaml); other folders there, such as the tether-gitlab plugin, are not."""
    return folder.is_dir() and folder.name[0] != "_" and (folder / "tether.yaml").is_file()


def example_today(path: Path) -> datetime | None:
    """The date an example is set on (``today:`` in its ``seed/demo.yaml``); a bare date means
    09:00 UTC that day. None when the example declares no date."""
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        value = data.get("today") if isinstance(data, dict) else None
        if isinstance(value, str) and "T" not in value:
            value = date.fromisoformat(value.strip())
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime.combine(value, MORNING)  # a working morning, as the tests pin
        return parse_datetime(value)
    except (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError) as exc:
        raise TetherError(f"{path}: cannot read the example's date (today: YYYY-MM-DD): "
                          f"{exc}") from None


def copy_missing(src: Path, dst: Path, skip: set[str]) -> None:
    """Copy ``src`` into ``dst`` without overwriting anything already there."""
    for item in sorted(src.rglob("*")):
        rel = item.relative_to(src)
        if rel.parts[0] in skip or "__pycache__" in rel.parts or item.name == "__init__.py":
            continue
        target = dst / rel
        if item.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item, target)
