"""Where rule packs come from: folders of YAML shipped by plugins or named in config."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path


@dataclass(frozen=True)
class RulePackRef:
    """A named folder of rule YAML files; ``default`` packs run unless config disables them."""

    name: str
    path: Traversable | Path
    default: bool = True


def yaml_files(path: Traversable | Path) -> list[Traversable | Path]:
    """The rule files of a pack, sorted by name; test files (``*.test.yaml``) excluded."""
    if path.is_file():
        return [path]
    return sorted(
        (p for p in path.iterdir() if p.name.endswith((".yaml", ".yml")) and not is_test_file(p)),
        key=lambda p: p.name,
    )


def is_test_file(path: Traversable | Path) -> bool:
    return path.name.endswith((".test.yaml", ".test.yml"))


def content_hash(files: list[Traversable | Path]) -> str:
    """A short hash of the files' names and bytes: the pack's version in run records."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()[:12]
