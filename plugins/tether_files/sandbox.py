"""The files sandbox: a copy of a seed folder of exports, so demos never touch the originals."""

from __future__ import annotations

import shutil
from pathlib import Path

from tether.connector import Sandbox
from tether.errors import TetherError

from .sidecar import SUFFIX


class FilesSandbox(Sandbox):
    """Copies the seed's exports into ``workdir`` once; later starts keep files (and sidecars)."""

    type_name = "files"

    def start(self, seed: Path, workdir: Path) -> dict:
        if not seed.is_dir():
            raise TetherError(f"The sandbox seed folder {seed} does not exist.")
        for src in sorted(seed.rglob("*")):
            rel = src.relative_to(seed)
            hidden = any(part.startswith(".") for part in rel.parts)
            if hidden or not src.is_file() or src.name.endswith(SUFFIX):
                continue
            dst = workdir / rel
            if not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
        return {}  # example configs use workspace-relative paths: nothing to point elsewhere
