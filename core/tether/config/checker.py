"""The located-YAML checker: validates values against pydantic types and reports every
problem at its file, line and field, with secrets from the environment redacted."""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from pydantic import (
    BaseModel,
    BeforeValidator,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from tether.config.yamlsrc import Doc, PathKey, load_file
from tether.errors import Problem

# Secrets shorter than this are not scrubbed from messages: it would garble ordinary words.
_MIN_REDACT = 4


@dataclass(frozen=True)
class Hint:
    """Field metadata: how a problem message describes the values a field accepts."""

    text: str


def not_bool(value: Any) -> Any:
    # YAML `true` would otherwise pass as the number 1.
    if isinstance(value, bool):
        raise PydanticCustomError("not_bool", "true/false is not a number")
    return value


def yaml_off(value: Any) -> Any:
    # YAML reads a bare `off` as false.
    return "off" if value is False else value


Whole = Annotated[int, BeforeValidator(not_bool)]
Number = Annotated[float, BeforeValidator(not_bool)]
NAME_HINT = Hint("lowercase letters, digits, '-' or '_', starting with a letter or digit")

# -- located validation ------------------------------------------------------------------------

_VAR = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPE_ERRORS = {
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of",
    "literal_error", "enum", "string_pattern_mismatch", "string_too_short", "string_too_long",
    "too_short", "too_long", "int_from_float", "finite_number", "not_bool",
}


@dataclass
class Checker:
    """One loaded file, the problems found so far, and which values came from the environment."""

    doc: Doc
    problems: list[Problem]
    secret_paths: set[PathKey] = field(default_factory=set)
    secret_values: set[str] = field(default_factory=set)
    broken: set[PathKey] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path, env: Mapping[str, str], problems: list[Problem]) -> Checker:
        """Parse ``path`` and interpolate ``${VAR}``; raises InvalidInput on YAML syntax errors."""
        check = cls(load_file(path), problems)
        check.doc.data = check._interpolate(check.doc.data, (), env)
        return check

    def add(self, path: PathKey, message: str) -> None:
        if not any(path[: len(b)] == b for b in self.broken):
            self.problems.append(self.doc.problem(path, message))

    def value(self, path: PathKey) -> Any:
        """The (interpolated) value at ``path``, or None when there is none."""
        value = self.doc.data
        for part in path:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                return None
        return value

    def show(self, path: PathKey, value: Any) -> str:
        """``value`` quoted for a message, unless it came from the environment (may be secret)."""
        return "(value from the environment)" if path in self.secret_paths else f"'{value}'"

    def validate(self, tp: Any, path: PathKey, data: Any, noun: str = "key") -> Any:
        """``data`` validated as ``tp``, or None after adding one located problem per error."""
        try:
            return _adapter(tp).validate_python(data)
        except ValidationError as exc:
            seen: set[tuple[PathKey, str]] = set()
            for err in exc.errors(include_url=False):
                loc = self._norm(path, err["loc"], err["type"])
                message = self._message(tp, loc, err, (*path, *loc), noun)
                if ((*path, *loc), message) not in seen:
                    seen.add(((*path, *loc), message))
                    self.add((*path, *loc), message)
            return None

    def _norm(self, path: PathKey, loc: tuple, kind: str) -> PathKey:
        # Drop union-member tags pydantic puts in ``loc``: they are not keys in the file.
        out: list[str | int] = []
        for i, part in enumerate(loc):
            last = i == len(loc) - 1
            if (*path, *out, part) in self.doc.marks or (last and kind == "missing"):
                out.append(part)
        return tuple(out)

    def _message(self, tp: Any, loc: PathKey, err: Any, full: PathKey, noun: str) -> str:
        kind = err["type"]
        if kind == "missing":
            return f"'{loc[-1]}' is required; add it" if loc else "a required value is missing"
        if kind == "extra_forbidden":
            owner = _model_of(_resolve(tp, loc[:-1])[0])
            return unknown_key(str(loc[-1]), _field_names(owner) if owner else [], noun)
        ann, meta = _resolve(tp, loc)
        desc = describe(ann, meta) if ann is not None else None
        if desc and (kind in _TYPE_ERRORS or kind.endswith(("_type", "_parsing"))):
            message = f"must be {desc}"
            value = err.get("input")
            if kind == "literal_error" and isinstance(value, str) and full not in self.secret_paths:
                allowed = [str(a) for a in get_args(_unannotate(ann)[0])]
                close = difflib.get_close_matches(value, allowed, n=1)
                message += f"; did you mean '{close[0]}'?" if close else ""
            return message
        return self._redact(_plain(err["msg"]))

    def _redact(self, text: str) -> str:
        for secret in sorted(self.secret_values, key=len, reverse=True):
            if len(secret) >= _MIN_REDACT:
                text = text.replace(secret, "***")
        return text

    def _interpolate(self, value: Any, path: PathKey, env: Mapping[str, str]) -> Any:
        if isinstance(value, dict):
            return {k: self._interpolate(v, (*path, k), env) for k, v in value.items()}
        if isinstance(value, list):
            return [self._interpolate(v, (*path, i), env) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        used = False

        def sub(match: re.Match[str]) -> str:
            nonlocal used
            name = match.group(1)
            if match.group(0) == "$${":
                return "${"
            if name is None or not _VAR_NAME.fullmatch(name):
                self.add(path, "'${' must start a variable like ${JIRA_TOKEN}; "
                         "write '$${' for a literal '${'")
            elif name not in env:
                self.add(path, f"environment variable {name} is not set; "
                         "export it before running tether")
            else:
                used = True
                if env[name]:
                    self.secret_values.add(env[name])
                return env[name]
            self.broken.add(path)
            return ""

        out = _VAR.sub(sub, value)
        if used:
            self.secret_paths.add(path)
        return out


@lru_cache(maxsize=256)
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def unknown_key(key: str, known: list[str], noun: str = "key") -> str:
    """A polite message for a key that is not allowed, with the nearest known one."""
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown {noun} '{key}'; did you mean '{close[0]}'?"
    return f"unknown {noun} '{key}'; " + (
        f"use one of: {', '.join(sorted(known))}" if known else "remove it")


def _plain(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg[:1].lower() + msg[1:]


def _unannotate(tp: Any, meta: tuple = ()) -> tuple[Any, tuple]:
    while get_origin(tp) is Annotated:
        meta = (*meta, *tp.__metadata__)
        tp = get_args(tp)[0]
    return tp, meta


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _model_of(tp: Any) -> type[BaseModel] | None:
    tp = _unannotate(tp)[0]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    if _is_union(tp):
        return next((m for a in get_args(tp) if (m := _model_of(a))), None)
    return None


def _field_names(m: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in m.model_fields.items()]


def _resolve(tp: Any, loc: PathKey) -> tuple[Any, tuple]:
    """The annotation and metadata of the field at ``loc`` inside ``tp``; (None, ()) if unknown."""
    meta: tuple = ()
    for part in loc:
        tp, _ = _unannotate(tp)
        if _is_union(tp):  # step into the member that has children (Optional[Model], list | str)
            tp = next((a for a in get_args(tp) if _model_of(a) or get_origin(a)), tp)
        owner = _model_of(tp)
        origin = get_origin(tp) or tp
        if owner is not None and isinstance(part, str):
            fields = {f.alias or n: f for n, f in owner.model_fields.items()}
            if part not in fields:
                extra = _extra_type(owner)
                if extra is None:
                    return None, ()
                tp, meta = extra, ()
                continue
            tp, meta = fields[part].annotation, tuple(fields[part].metadata)
        elif origin in (list, tuple, set, frozenset) and isinstance(part, int):
            tp, meta = (get_args(tp) or (Any,))[0], ()
        elif origin is dict:
            tp, meta = (get_args(tp) or (Any, Any))[-1], ()
        else:
            return None, ()
    return tp, meta


def _extra_type(m: type[BaseModel]) -> Any:
    """The value type a model declares for its extra keys (``__pydantic_extra__: dict[str, X]``)."""
    if "__pydantic_extra__" not in m.__dict__.get("__annotations__", {}):
        return None  # BaseModel's own declaration says nothing about the values
    try:
        hint = get_type_hints(m, include_extras=True).get("__pydantic_extra__")
    except Exception:  # noqa: BLE001 - an unresolvable hint just means "unknown"
        return None
    return get_args(hint)[-1] if get_origin(hint) is dict else None


def describe(tp: Any, meta: tuple = ()) -> str | None:
    """What values of type ``tp`` look like, in words for a problem message; None if unsure."""
    tp, meta = _unannotate(tp, meta)
    hint = next((m.text for m in meta if isinstance(m, Hint)), None)
    if hint:
        return hint
    if _is_union(tp):
        parts = [describe(a, meta) for a in get_args(tp)]
        return None if None in parts else ", or ".join(p for p in parts if p)
    origin = get_origin(tp) or tp
    if tp is type(None):
        return "null"
    if tp is bool:
        return "true or false"
    if tp in (int, float):
        words = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
        bounds = [f"{sym} {getattr(m, k)}" for m in meta for k, sym in words.items()
                  if getattr(m, k, None) is not None]
        return " ".join(["a whole number" if tp is int else "a number", *bounds])
    if tp is str:
        if any(getattr(m, "min_length", 0) for m in meta):
            return "a non-empty string"
        pattern = next((m.pattern for m in meta if getattr(m, "pattern", None)), None)
        return f"a string matching {pattern}" if pattern else "a string"
    if origin is Literal:
        return "one of: " + ", ".join(str(a) for a in get_args(tp))
    if origin in (list, tuple, set, frozenset):
        item = (get_args(tp) or (Any,))[0]
        return "a list of strings" if item is str else "a list"
    if origin is dict:
        return "a mapping of keys to values"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "a mapping with keys " + ", ".join(_field_names(tp))
    if isinstance(tp, type) and issubclass(tp, PurePath):
        return "a file path"
    return None


def duplicates(check: Checker, path: PathKey, items: list[Any], key: str, what: str,
               advice: str) -> None:
    """Add a problem for each item whose ``key`` repeats an earlier item's, valid or not."""
    first_line: dict[Any, int] = {}
    for i, item in enumerate(items):
        value = item.get(key) if isinstance(item, dict) else None
        if not isinstance(value, str | int):
            continue
        where = (*path, i, key)
        if value in first_line:
            check.add(where, f"duplicate {what} {check.show(where, value)} (first on line "
                      f"{first_line[value]}); {advice}")
        else:
            first_line[value] = check.doc.where(where)[0]

