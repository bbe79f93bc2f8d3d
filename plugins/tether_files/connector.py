"""The files connector: tasks from an export on disk, annotations into a sidecar beside it."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from pathlib import Path

from tether.sdk import (
    Capabilities,
    Clock,
    Connector,
    CurrentAnnotation,
    InvalidInput,
    OpResult,
    Options,
    Problem,
    PullResult,
    Task,
    WriteOp,
)

from .formats import PARSERS, Format
from .reading import Context
from .sidecar import SUFFIX, Sidecar, apply_ops


class FilesOptions(Options):
    """``path`` is relative to tether.yaml's folder; ``format`` is explicit, never guessed."""

    path: str
    format: Format
    project: str | None = None  # for formats without one (gh-json takes it from the URL)
    sidecar: str | None = None  # default: "<path>.tether.json"
    url_base: str | None = None  # item URL = url_base + key, when the export has none


class FilesConnector(Connector):
    """Reads a whole export each pull; writes labels and one comment per item to the sidecar."""

    type_name = "files"
    options_model = FilesOptions
    capabilities = Capabilities(labels=True, comments=True, comments_editable=True,
                                markup="markdown")
    options: FilesOptions

    def __init__(self, name: str, options: Options, base_dir: Path, clock: Clock | None = None):
        super().__init__(name, options, base_dir, clock)
        self._keys: set[str] | None = None

    @property
    def export_path(self) -> Path:
        return self.base_dir / self.options.path

    @property
    def sidecar(self) -> Sidecar:
        return Sidecar(self.base_dir / (self.options.sidecar or self.options.path + SUFFIX))

    def pull(self, cursor: str | None) -> PullResult:
        """All tasks of the export (``complete``); the cursor is the sha256 of its bytes."""
        path = self.export_path
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInput([Problem(str(path), 1, 1, "options.path", (
                f"cannot read the export ({exc.strerror}); check options.path of source "
                f"'{self.name}' (relative to {self.base_dir.resolve()})"))]) from None
        try:
            text = data.decode("utf-8-sig")  # Excel and Jira write a byte-order mark
        except UnicodeDecodeError as exc:
            raise InvalidInput([Problem(str(path), data.count(b"\n", 0, exc.start) + 1, 1, "",
                                        "not UTF-8 text; save or export it as UTF-8")]) from None
        ctx = Context(str(path), self.name, self.options.project, self.options.url_base)
        tasks = PARSERS[self.options.format](text, ctx)
        self._keys = {task.key for task in tasks}
        return PullResult(tasks, hashlib.sha256(data).hexdigest(), complete=True)

    def read_annotations(self, tasks: Sequence[Task], prefix: str) -> dict[str, CurrentAnnotation]:
        """Sidecar entries of ``tasks``, keeping only labels in the ``<prefix>:`` namespace."""
        items, wanted = self.sidecar.load(), {task.key for task in tasks}
        out = {}
        for key, item in items.items():
            if key in wanted:
                comment = item.get("comment") or {}
                labels = frozenset(lbl for lbl in item.get("labels", [])
                                   if lbl.startswith(f"{prefix}:"))
                out[key] = CurrentAnnotation(labels, comment.get("body"), comment.get("id"))
        return out

    def apply(self, ops: Sequence[WriteOp]) -> list[OpResult]:
        """Perform ``ops`` on the sidecar and write it once, atomically, if anything changed."""
        if self._keys is None:
            self.pull(None)
        sidecar = self.sidecar
        before = sidecar.load()
        items = copy.deepcopy(before)
        results = apply_ops(items, ops, self._keys or set(), self.options.path)
        if items != before:
            try:
                sidecar.save(items)
            except OSError as exc:
                error = f"cannot write {sidecar.path} ({exc.strerror}); make the folder writable"
                return [OpResult(r.op, False, error) if r.ok else r for r in results]
        return results
