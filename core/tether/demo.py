"""`tether demo`: a shipped example workspace, its trackers served by sandboxes on loopback."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from importlib.resources import as_file, files
from pathlib import Path

from .config import load_config
from .connector import Sandbox
from .errors import TetherError
from .plugins import Plugins
from .workspace import Workspace, load_workspace

DEMO_EXAMPLE = "northwind-trackers"
SEED_DIR = "seed"  # an example's sandbox seeds; everything else is its workspace


@dataclass
class Demo:
    """A running demo: the workspace to sync and the sandboxes serving its sources."""

    workspace: Workspace
    urls: dict[str, str]
    sandboxes: list[Sandbox] = field(default_factory=list)
    options: dict[str, dict] = field(default_factory=dict)  # per source: what points it here

    def stop(self) -> None:
        for box in self.sandboxes:
            box.stop()


def start_demo(workdir: Path, plugins: Plugins, example: str = DEMO_EXAMPLE) -> Demo:
    """Copy ``example`` into ``workdir`` (keeping what is there), start a sandbox per source
    from the example's seeds (or the state a previous run left), and load the workspace."""
    folder = files("tether.examples") / example
    if not folder.is_dir():
        raise TetherError(f"There is no example called '{example}'; try {DEMO_EXAMPLE}.")
    with as_file(folder) as source_dir:
        copy_missing(source_dir, workdir, skip={SEED_DIR})
        config = load_config(workdir, plugins)
        kinds = plugins.sandbox_types()
        sandboxes: list[Sandbox] = []
        overrides: dict[str, dict] = {}
        try:
            for source in config.sources:
                if source.type not in kinds or not (source_dir / SEED_DIR).is_dir():
                    continue  # an export (files) needs no sandbox
                box = kinds[source.type]()
                sandboxes.append(box)
                overrides[source.name] = box.start(source_dir / SEED_DIR,
                                                   workdir / ".sandbox" / source.name)
                os.environ.update(box.env)
            workspace = load_workspace(workdir, plugins, overrides)
        except BaseException:
            for box in sandboxes:
                box.stop()
            raise
    urls = {name: options.get("url", "") for name, options in overrides.items()}
    return Demo(workspace, urls, sandboxes, overrides)


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
