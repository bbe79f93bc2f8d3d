"""The sidecar: Tether's labels and comment per item, kept beside an export it cannot edit."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from tether.sdk import InvalidInput, OpKind, OpResult, Problem, WriteOp

SUFFIX = ".tether.json"
VERSION = 1
Items = dict[str, dict[str, Any]]  # key -> {"labels": [...], "comment": {"id", "body"}}


class Sidecar:
    """``{"version": 1, "items": {key: {"labels": [...], "comment": {"id": .., "body": ..}}}}``."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> Items:
        """The items, ``{}`` when there is no sidecar yet; InvalidInput if it is damaged."""
        fix = "fix it, or delete it and Tether writes its labels and comments again"
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except UnicodeDecodeError:
            raise InvalidInput([Problem(str(self.path), 1, 1, "", f"not UTF-8 text; {fix}")]) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput([Problem(str(self.path), exc.lineno, exc.colno, "",
                                        f"not valid JSON: {exc.msg}; {fix}")]) from None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise InvalidInput([Problem(str(self.path), 1, 1, "version",
                                        f"expected a version {VERSION} sidecar; {fix}")])
        items = data.get("items")
        if not isinstance(items, dict) or not all(_valid(item) for item in items.values()):
            raise InvalidInput([Problem(str(self.path), 1, 1, "items",
                                        'each item needs "labels" (a list) and optionally '
                                        f'"comment" ({{"id", "body"}}); {fix}')])
        return items

    def save(self, items: Items) -> None:
        """Replace the file atomically: a crash leaves the old sidecar or the new, never half."""
        data = {"version": VERSION, "items": {key: items[key] for key in sorted(items)}}
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                   dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            # mkstemp makes the file private; keep the old sidecar's mode or a normal one.
            mode = self.path.stat().st_mode if self.path.exists() else 0o644
            os.chmod(tmp, mode & 0o777)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _valid(item: Any) -> bool:
    labels = item.get("labels", []) if isinstance(item, dict) else None
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        return False
    comment = item.get("comment")
    return comment is None or (isinstance(comment, dict) and isinstance(comment.get("id"), str)
                               and isinstance(comment.get("body"), str))


def apply_ops(items: Items, ops: Sequence[WriteOp], known: Collection[str],
              export: str) -> list[OpResult]:
    """Apply ``ops`` to ``items`` in place; a repeated op changes nothing; one comment per item."""
    numbers = [int(item["comment"]["id"][1:]) for item in items.values()
               if item.get("comment") and item["comment"]["id"][1:].isdigit()]
    next_id = max(numbers, default=0) + 1
    results = []
    for op in ops:
        if op.key not in known:
            results.append(OpResult(op, False, f"item {op.key} is not in {export}; "
                                               "re-export and run again"))
            continue
        item = items.setdefault(op.key, {"labels": []})
        labels: list[str] = item.setdefault("labels", [])
        comment_id = None
        if op.kind is OpKind.ADD_LABEL and op.value not in labels:
            labels.append(op.value)
            labels.sort()
        elif op.kind is OpKind.REMOVE_LABEL and op.value in labels:
            labels.remove(op.value)
        elif op.kind in (OpKind.CREATE_COMMENT, OpKind.UPDATE_COMMENT):
            # Replace whatever comment is there, so a retried create never makes a second one.
            if not item.get("comment"):
                item["comment"] = {"id": f"c{next_id}", "body": ""}
                next_id += 1
            item["comment"]["body"] = op.value
            comment_id = item["comment"]["id"]
        if not labels and not item.get("comment"):
            del items[op.key]
        results.append(OpResult(op, True, comment_id=comment_id))
    return results
