"""YAML loading that remembers where every value came from, for located errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from tether.errors import InvalidInput, Problem

PathKey = tuple[str | int, ...]


@dataclass
class Doc:
    """Plain data loaded from one YAML file, plus the line/column of every value."""

    data: Any
    file: str
    marks: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: PathKey) -> tuple[int, int]:
        """1-based (line, column) of ``path``, or of its nearest located ancestor."""
        path = tuple(path)
        while path not in self.marks and path:
            path = path[:-1]
        return self.marks.get(path, (1, 1))

    def problem(self, path: PathKey, message: str) -> Problem:
        line, col = self.where(path)
        return Problem(self.file, line, col, dotted(path), message)


def dotted(path: PathKey) -> str:
    """``("sources", 0, "type")`` -> ``sources[0].type``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_text(text: str, file: str) -> Doc:
    """Parse ``text``; raise InvalidInput (with the line) on syntax errors or duplicate keys."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise InvalidInput([Problem(file, line, col, "", f"not valid YAML: {exc.problem}")]) from None
    finally:
        loader.dispose()
    doc = Doc(None, file)
    problems: list[Problem] = []
    doc.data = None if node is None else _build(node, (), doc, loader, problems)
    if problems:
        raise InvalidInput(problems)
    return doc


def read_text(path: Traversable | Path, encoding: str = "utf-8") -> str:
    """The file's text; a missing file or bytes that are not UTF-8 are located problems (the
    line and column of the first bad byte), never a traceback."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput([Problem(str(path), 1, 1, "", f"cannot read file: {exc.strerror}")]) from None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        raise InvalidInput([Problem(str(path), data.count(b"\n", 0, exc.start) + 1,
                                    exc.start - line_start + 1, "",
                                    f"byte 0x{data[exc.start]:02x} is not UTF-8 text; save the "
                                    "file as UTF-8")]) from None


def load_file(path: Path) -> Doc:
    """Read and parse one YAML file; a missing or undecodable file is a located problem too."""
    return load_text(read_text(path), str(path))


def _build(node: yaml.Node, path: PathKey, doc: Doc, loader: yaml.SafeLoader,
           problems: list[Problem]) -> Any:
    doc.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                key = str(key)
            child = (*path, key)
            if key in out:
                line = key_node.start_mark.line + 1
                problems.append(Problem(doc.file, line, key_node.start_mark.column + 1,
                                        dotted(child), "duplicate key; keep only one"))
            out[key] = _build(value_node, child, doc, loader, problems)
            # Point a key's problems at the key itself, not at its value.
            doc.marks[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), doc, loader, problems) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except ValueError:
        # A scalar that looks like a type it is not (the timestamp 2025-13-01): keep its text,
        # so validation reports it at its key like any other wrong value.
        loader.recursive_objects.pop(node, None)
        return node.value
