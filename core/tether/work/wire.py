"""Tether's plain dataclasses as JSON and back, for what work units hand each other through
the broker and the state store (JSON, never pickle: a broker message must not run code)."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def dump(value: Any) -> Any:
    """``value`` (a dataclass, or lists and dicts of them) as JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, frozenset | set):
        return sorted(dump(v) for v in value)
    if isinstance(value, list | tuple):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    return value


def load(kind: type[T], data: Any) -> T:
    """Rebuild a ``kind`` dataclass from ``dump``'s output."""
    return typing.cast(T, _load(kind, data))


@cache
def _hints(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind)


def _load(kind: Any, data: Any) -> Any:
    if data is None:
        return None
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        return kind(**{name: _load(hints[name], value) for name, value in data.items()})
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        return _load(kinds[0], data)
    if origin in (frozenset, set):
        return origin(_load(args[0], v) for v in data)
    if origin is tuple:
        return tuple(_load(args[0], v) for v in data)
    if origin is list:
        return [_load(args[0], v) for v in data]
    if origin is dict:
        return {k: _load(args[1], v) for k, v in data.items()}
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(data)
    if kind is datetime:
        return datetime.fromisoformat(data)
    return data
