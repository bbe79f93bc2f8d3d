"""The wheel must ship every package and the rule packs, not only an editable install."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_python_package_is_listed_in_pyproject() -> None:
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setup["packages"])
    found = set()
    for name, folder in setup["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            # A folder that is no identifier (examples/tether-gitlab, a project of its own)
            # cannot be a subpackage: it ships as data, or not at all.
            if all(part.isidentifier() for part in rel):
                found.add(".".join((name, *rel)))
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages"
