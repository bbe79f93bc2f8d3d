"""Tether's labels in Asana: workspace tags (found by name, created once, reused) or the
options of one multi-enum custom field. Only labels Tether is asked to change are touched."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tether.sdk import OpKind, SourceError, WriteOp

from . import batch
from .client import AsanaClient
from .failures import Where

Item = dict[str, Any]
WhereFor = Callable[[str], Where]  # task gid -> where a call about that task is


class TagLabels:
    """Labels as tags. Tags are workspace objects, names not unique: Tether uses the oldest
    tag of a name (lowest gid) and, removing a label, every tag of that name on the task.
    The tag writes themselves go out as batch actions (see tether_asana.batch)."""

    fields = ("tags.name",)

    def __init__(self, client: AsanaClient, workspace: str, where_for: WhereFor):
        self.client = client
        self.workspace = workspace
        self.where_for = where_for
        self._known: dict[str, str] = {}  # name -> gid, from tasks and the workspace listing
        self._listed = False
        self._on_task: dict[str, list[Item]] = {}  # task gid -> its tags, last seen

    def known(self) -> dict[str, str]:
        """The tags learnt so far, name -> gid (the oldest of a name)."""
        return dict(self._known)

    def learn(self, item: Item) -> None:
        """Remember the tags a fresh task payload shows (saves lookups when writing)."""
        tags = item.get("tags") or []
        self._on_task[item["gid"]] = tags
        for tag in tags:
            self._remember(tag)

    def shown(self, item: Item, prefix: str) -> set[str]:
        return {t.get("name") or "" for t in item.get("tags") or []
                if (t.get("name") or "").startswith(prefix + ":")}

    def keep(self, item: Item, prefix: str) -> list[Any]:
        """The tags ``shown`` names, as memory keeps them: ``[name, gid, ...]`` per name."""
        kept: dict[str, list[str]] = {}
        for tag in item.get("tags") or []:
            name = tag.get("name") or ""
            if name.startswith(prefix + ":") and tag.get("gid"):
                kept.setdefault(name, []).append(str(tag["gid"]))
        return [[name, *gids] for name, gids in sorted(kept.items())]

    def kept_names(self, kept: list[Any]) -> set[str] | None:
        """The label names ``keep`` kept; None when malformed."""
        if not all(isinstance(k, list) and len(k) > 1 and all(isinstance(x, str) for x in k)
                   for k in kept):
            return None
        return {k[0] for k in kept}

    def recall(self, task: str, kept: list[Any]) -> None:
        """Learn the tags memory kept for a task not read this pass (a removal needs them)."""
        if task not in self._on_task:
            self._on_task[task] = [{"gid": gid, "name": name} for name, *gids in kept
                                   for gid in gids]

    def plan(self, ops: Sequence[WriteOp]) -> list[tuple[list[batch.Item], str | None]]:
        """Each op as batch items (addTag, or removeTag for every tag of that name on the
        task: none when it has none), or the error that stopped it before any (the tag could
        not be found or made, the task could not be read)."""
        out: list[tuple[list[batch.Item], str | None]] = []
        for op in ops:
            try:
                add = op.kind is OpKind.ADD_LABEL
                out.append(((self._add if add else self._remove)(op.key, op.value), None))
            except SourceError as exc:
                out.append(([], str(exc)))
        return out

    def settled(self, task: str, ok: bool) -> None:
        """After the writes: a task whose tag write failed is read afresh before the next."""
        if not ok:
            self._on_task.pop(task, None)

    def _add(self, task: str, name: str) -> list[batch.Item]:
        gid = self._tag(name)
        shown = self._on_task.setdefault(task, [])
        if not any(t.get("gid") == gid for t in shown):
            shown.append({"gid": gid, "name": name})
        return [batch.Item(batch.Action("POST", f"/tasks/{task}/addTag", {"tag": gid},
                                        self._task(task), f"{task}:tag:{gid}"))]

    def _remove(self, task: str, name: str) -> list[batch.Item]:
        where = self._task(task)
        if task not in self._on_task:
            body = self.client.call("GET", f"/tasks/{task}", where, {"opt_fields": "tags.name"})
            self.learn(body.get("data") or {"gid": task})
        items = []
        for tag in [t for t in self._on_task[task] if t.get("name") == name]:
            items.append(batch.Item(batch.Action("POST", f"/tasks/{task}/removeTag",
                                                 {"tag": tag["gid"]}, where,
                                                 f"{task}:tag:{tag['gid']}")))
            self._on_task[task].remove(tag)
        return items

    def _task(self, task: str) -> Where:
        return self.where_for(task).about(f"task {task}", _missing(task), "tasks:write")

    def _tag(self, name: str) -> str:
        """The gid of the tag called ``name``: known, listed, or created (once per workspace)."""
        if name in self._known:
            return self._known[name]
        where = Where(f"workspace {self.workspace}",
                      f"workspace {self.workspace} not found; check options.workspace",
                      "tags:write")
        attempts = 0

        def find_or_create() -> str:
            nonlocal attempts
            attempts += 1
            if not self._listed or attempts > 1:  # a retry must see a tag the lost reply made
                for tag in self.client.send_pages(f"/workspaces/{self.workspace}/tags",
                                                  {"opt_fields": "name"}):
                    self._remember(tag)
                self._listed = True
            if name in self._known:
                return self._known[name]
            body = self.client.send("POST", "/tags", data={"name": name,
                                                           "workspace": self.workspace})
            self._remember(body["data"])
            return body["data"]["gid"]

        return self.client.retrying(find_or_create, where)

    def _remember(self, tag: Item) -> None:
        name, gid = tag.get("name"), tag.get("gid")
        if name and gid and (name not in self._known or int(gid) < int(self._known[name])):
            self._known[name] = gid


class FieldLabels:
    """Labels as the options of one multi-enum custom field; a write sets the field's whole
    value, so it re-reads the task first and changes only the options it was asked to."""

    def __init__(self, client: AsanaClient, field: str, where_for: WhereFor):
        self.client = client
        self.field = field
        self.where_for = where_for
        self.fields = ("custom_fields.multi_enum_values.name",)
        self._options: dict[str, Item] | None = None  # name -> option (enabled or not)

    def learn(self, item: Item) -> None:
        """Nothing to remember: each write re-reads the task it changes."""

    def settled(self, task: str, ok: bool) -> None:
        """Nothing to forget either."""

    def shown(self, item: Item, prefix: str) -> set[str]:
        return {name for name in self._chosen(item).values() if name.startswith(prefix + ":")}

    def keep(self, item: Item, prefix: str) -> list[Any]:
        """The option names ``shown`` gives, as memory keeps them."""
        return sorted(self.shown(item, prefix))

    def kept_names(self, kept: list[Any]) -> set[str] | None:
        return set(kept) if all(isinstance(k, str) for k in kept) else None

    def recall(self, task: str, kept: list[Any]) -> None:
        """Nothing to learn: each write re-reads the task it changes."""

    def _chosen(self, item: Item) -> dict[str, str]:
        field = next((f for f in item.get("custom_fields") or [] if f.get("gid") == self.field),
                     None)
        return {v["gid"]: v.get("name") or "" for v in (field or {}).get("multi_enum_values")
                or []}

    def apply(self, ops: Sequence[WriteOp]) -> list[str | None]:
        """Group the ops by task: one read and at most one write per task."""
        errors: list[str | None] = [None] * len(ops)
        by_task: dict[str, list[int]] = {}
        for index, op in enumerate(ops):
            by_task.setdefault(op.key, []).append(index)
        for task, indexes in by_task.items():
            for index, error in zip(indexes, self._apply_task(task, [ops[i] for i in indexes]),
                                    strict=True):
                errors[index] = error
        return errors

    def _apply_task(self, task: str, ops: list[WriteOp]) -> list[str | None]:
        errors: list[str | None] = [None] * len(ops)
        adds: dict[int, str] = {}
        for index, op in enumerate(ops):
            if op.kind is OpKind.ADD_LABEL:
                try:
                    adds[index] = self._option(op.value)
                except SourceError as exc:
                    errors[index] = str(exc)
        removes = {op.value for i, op in enumerate(ops) if op.kind is OpKind.REMOVE_LABEL}
        where = self.where_for(task).about(f"task {task}", _missing(task), "tasks:write")

        def read_then_write() -> None:
            body = self.client.send("GET", f"/tasks/{task}",
                                    {"opt_fields": "custom_fields.multi_enum_values.name"})
            item = body.get("data") or {}
            if not any(f.get("gid") == self.field for f in item.get("custom_fields") or []):
                raise SourceError(f"{where.label}: custom field {self.field} "
                                  "(options.label_field) is not on this task's project; add "
                                  "the field to the project in Asana")
            now = self._chosen(item)
            want = [g for g, name in now.items() if name not in removes]
            want += [g for g in adds.values() if g not in want]
            if want != list(now):
                self.client.send("PUT", f"/tasks/{task}",
                                 {"opt_fields": "modified_at"},
                                 {"custom_fields": {self.field: want}})

        if adds or removes:
            try:
                self.client.retrying(read_then_write, where)
            except SourceError as exc:
                errors = [e or str(exc) for e in errors]
        return errors

    def _option(self, name: str) -> str:
        """The gid of the field's option ``name``, created when missing."""
        where = Where(f"custom field {self.field}",
                      f"custom field {self.field} not found; check options.label_field",
                      "custom_fields:write")
        attempts = 0

        def find_or_create() -> str:
            nonlocal attempts
            attempts += 1
            if self._options is None or attempts > 1:
                body = self.client.send("GET", f"/custom_fields/{self.field}",
                                        {"opt_fields": "enum_options.name,enum_options.enabled"})
                self._options = {o["name"]: o for o in body["data"].get("enum_options") or []}
            option = self._options.get(name)
            if option is None:
                body = self.client.send("POST", f"/custom_fields/{self.field}/enum_options",
                                        data={"name": name})
                option = self._options[name] = body["data"]
            if option.get("enabled") is False:
                raise SourceError(f"{where.label}: its option {name!r} is disabled; enable "
                                  "it in Asana, or remove it from the field")
            return option["gid"]

        return self.client.retrying(find_or_create, where)


def _missing(task: str) -> str:
    return f"task {task} not found (deleted, or no longer visible to the token's user)"
