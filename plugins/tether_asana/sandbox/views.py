"""How the Asana sandbox shows its records: the API's resource shapes (compact, default and
opt-in fields, per the OpenAPI schemas), opt_fields projection and offset pagination."""

from __future__ import annotations

import base64
import binascii
import json
from html import escape
from typing import Any
from urllib.parse import urlencode

from .state import AsanaState, Record, StateError

API = "/api/1.0"
# Asana answers 400 instead of an unpaginated list that is too big (thash/asana#7,
# Asana/ruby-asana#170); DAKboard#1106 saw it above 100 results, so that is the bound here.
TOO_LARGE = 100
TOO_LARGE_MESSAGE = ("The result is too large. You should use pagination (may require "
                     "specifying a workspace)!")
MAX_LIMIT = 100
TASK_COMPACT = ("gid", "name", "resource_type", "resource_subtype")
TASK_OPT_IN = {"created_by", "dependencies", "dependents", "html_notes",
               "is_rendered_as_separator", "num_subtasks"}
STORY_COMPACT = ("gid", "created_at", "created_by", "resource_subtype", "resource_type", "text")
TAG_COMPACT = ("gid", "name", "resource_type")
USER_COMPACT = ("gid", "name", "resource_type")
NEXT_PAGE_FIELDS = {"offset", "path", "uri"}  # listed in every opt_fields enum; harmless


class Views:
    """Renders state records for one request's base URL."""

    def __init__(self, state: AsanaState, base_url: str):
        self.state = state
        self.base_url = base_url
        self._reverse: tuple[dict[str, list[str]], dict[str, int]] | None = None

    def _links(self) -> tuple[dict[str, list[str]], dict[str, int]]:
        """Dependents and subtask counts by task gid, built once per request (a Views lives
        for one request) so a page of tasks does not rescan every task per item."""
        if self._reverse is None:
            dependents: dict[str, list[str]] = {}
            children: dict[str, int] = {}
            for t in self.state.tasks.values():
                for g in t["dependencies"]:
                    dependents.setdefault(g, []).append(t["gid"])
                if t["parent"] is not None:
                    children[t["parent"]] = children.get(t["parent"], 0) + 1
            self._reverse = (dependents, children)
        return self._reverse

    # -- references (the compact forms nested inside other resources) --------------------

    def user(self, gid: str | None) -> Record | None:
        if gid is None:
            return None
        return {"gid": gid, "name": self.state.users[gid]["name"], "resource_type": "user"}

    def workspace(self) -> Record:
        ws = self.state.workspace
        return {"gid": ws["gid"], "name": ws["name"], "resource_type": "workspace"}

    def project_ref(self, gid: str) -> Record:
        return {"gid": gid, "name": self.state.projects[gid]["name"], "resource_type": "project"}

    def section_ref(self, project: str, gid: str) -> Record:
        sect = next(s for s in self.state.projects[project]["sections"] if s["gid"] == gid)
        return {"gid": gid, "name": sect["name"], "resource_type": "section"}

    def tag_ref(self, gid: str) -> Record:
        return {"gid": gid, "name": self.state.tags[gid]["name"], "resource_type": "tag"}

    def task_ref(self, gid: str | None) -> Record | None:
        if gid is None or gid not in self.state.tasks:
            return None
        task = self.state.tasks[gid]
        return {"gid": gid, "name": task["name"], "resource_type": "task",
                "resource_subtype": task["resource_subtype"]}

    @staticmethod
    def option(option: Record) -> Record:
        return {"gid": option["gid"], "resource_type": "enum_option", "name": option["name"],
                "enabled": option["enabled"], "color": option["color"]}

    # -- tasks -----------------------------------------------------------------------------

    def permalink(self, task: Record) -> str:
        project = task["memberships"][0]["project"] if task["memberships"] else "0"
        return (f"{self.base_url}/1/{self.state.workspace['gid']}/project/{project}"
                f"/task/{task['gid']}")

    def task_all(self, task: Record) -> Record:
        """Every field a task can show, opt-in ones included."""
        st = self.state
        likes = [{"gid": f"{task['gid']}{i}", "user": self.user(u)}
                 for i, u in enumerate(task["likes"])]
        return {
            "gid": task["gid"], "resource_type": "task",
            "resource_subtype": task["resource_subtype"], "name": task["name"],
            "actual_time_minutes": None, "assignee": self.user(task["assignee"]),
            "assignee_status": "upcoming", "completed": task["completed"],
            "completed_at": task["completed_at"], "completed_by": self.user(task["completed_by"]),
            "created_at": task["created_at"],
            "created_by": {"gid": task["created_by"], "resource_type": "user"},
            "custom_fields": [self.field_value(f, task["values"].get(f["gid"]))
                              for f in st.task_fields(task)],
            "custom_type": None, "custom_type_status_option": None,
            "dependencies": [{"gid": g, "resource_type": "task"} for g in task["dependencies"]],
            "dependents": [{"gid": g, "resource_type": "task"}
                           for g in self._links()[0].get(task["gid"], [])],
            "due_at": task["due_at"], "due_on": task["due_on"],
            "followers": [self.user(u) for u in task["followers"]],
            "hearted": st.me in task["likes"], "hearts": likes,
            "html_notes": f"<body>{escape(task['notes'], quote=False)}</body>",
            "is_rendered_as_separator": False, "liked": st.me in task["likes"], "likes": likes,
            "memberships": [{"project": self.project_ref(m["project"]),
                             "section": self.section_ref(m["project"], m["section"])}
                            for m in task["memberships"]],
            "modified_at": task["modified_at"], "notes": task["notes"],
            "num_hearts": len(likes), "num_likes": len(likes),
            "num_subtasks": self._links()[1].get(task["gid"], 0),
            "parent": self.task_ref(task["parent"]), "permalink_url": self.permalink(task),
            "projects": [self.project_ref(m["project"]) for m in task["memberships"]],
            "start_at": task["start_at"], "start_on": task["start_on"],
            "tags": [self.tag_ref(g) for g in task["tags"]], "workspace": self.workspace(),
        }

    def task(self, task: Record, fields: list[str] | None, compact: bool = False) -> Record:
        """A task as a list (compact) or a single-task endpoint (default fields) shows it."""
        data = self.task_all(task)
        if fields:
            return project(data, fields)
        if compact:
            return {k: data[k] for k in TASK_COMPACT}
        return {k: v for k, v in data.items() if k not in TASK_OPT_IN}

    def field_value(self, field: Record, value: Any) -> Record:
        """A custom field as it appears in a task's custom_fields: definition plus value."""
        out = self.definition(field)
        out["display_value"] = self.display(field, value)
        options = {o["gid"]: o for o in field["options"]}
        kind = field["kind"]
        if kind == "number":
            out["number_value"] = value
        elif kind == "text":
            out["text_value"] = value
        elif kind == "enum":
            out["enum_value"] = self.option(options[value]) if value else None
        elif kind == "multi_enum":
            out["multi_enum_values"] = [self.option(options[g]) for g in value or []]
        elif kind == "date":
            out["date_value"] = {"date": value, "date_time": None} if value else None
        elif kind == "people":
            out["people_value"] = [self.user(u) for u in value or []]
        return out

    def definition(self, field: Record) -> Record:
        """The custom field's own fields (CustomFieldResponse without opt-in ones)."""
        kind = field["kind"]
        data: Record = {
            "gid": field["gid"], "resource_type": "custom_field", "name": field["name"],
            "resource_subtype": kind, "type": kind, "representation_type": kind,
            "id_prefix": None, "input_restrictions": [], "display_value": None,
            "enabled": True, "is_formula_field": False, "is_value_read_only": False,
            "has_notifications_enabled": True, "is_global_to_workspace": True,
            "created_by": None, "format": "none", "currency_code": None, "custom_label": None,
            "custom_label_position": None, "precision": field["precision"],
            "privacy_setting": "public_with_guests", "default_access_level": "editor",
        }
        if kind in ("enum", "multi_enum"):
            data["enum_options"] = [self.option(o) for o in field["options"]]
        return data

    def display(self, field: Record, value: Any) -> str | None:
        if value in (None, [], ""):
            return None
        names = {o["gid"]: o["name"] for o in field["options"]}
        kind = field["kind"]
        if kind == "number":
            return f"{value:.{field['precision']}f}"
        if kind == "enum":
            return names[value]
        if kind == "multi_enum":
            return ", ".join(names[g] for g in value)
        if kind == "people":
            return ", ".join(self.state.users[u]["name"] for u in value)
        return str(value)

    def field(self, field: Record, fields: list[str] | None) -> Record:
        """GET /custom_fields/{gid}: the definition."""
        data = self.definition(field)
        return project(data, fields) if fields else data

    # -- stories, tags, users ----------------------------------------------------------------

    def story_all(self, story: Record) -> Record:
        data: Record = {
            "gid": story["gid"], "resource_type": "story", "created_at": story["created_at"],
            "created_by": self.user(story["created_by"]),
            "resource_subtype": story["resource_subtype"], "type": story["type"],
            "text": story["text"],
            "html_text": story["html_text"] or f"<body>{escape(story['text'], quote=False)}</body>",
            "source": story["source"], "target": self.task_ref(story["task"]),
        }
        if story["type"] == "comment":  # the *Conditional* fields comments carry
            data.update(is_pinned=story["is_pinned"], is_edited=story["is_edited"],
                        is_editable=story["created_by"] == self.state.me, liked=False,
                        likes=[], num_likes=0, hearted=False, hearts=[], num_hearts=0,
                        previews=[], reaction_summary=[])
        if story["resource_subtype"] in ("added_to_tag", "removed_from_tag") and "tag" in story:
            data["tag"] = self.tag_ref(story["tag"]) if story["tag"] in self.state.tags else None
        if story["resource_subtype"] == "name_changed":
            data.update(old_name=story.get("old_name"), new_name=story.get("new_name"))
        return data

    def story(self, story: Record, fields: list[str] | None, compact: bool = False) -> Record:
        data = self.story_all(story)
        if fields:
            return project(data, fields)
        if compact:
            return {k: data[k] for k in STORY_COMPACT}
        return {k: v for k, v in data.items() if k != "html_text"}  # html_text is opt-in

    def tag(self, tag: Record, fields: list[str] | None, compact: bool = False) -> Record:
        data = {"gid": tag["gid"], "resource_type": "tag", "name": tag["name"],
                "color": tag["color"], "notes": tag["notes"], "created_at": tag["created_at"],
                "followers": [self.user(u) for u in tag["followers"]],
                "permalink_url": f"{self.base_url}/0/{tag['gid']}/list",
                "workspace": self.workspace()}
        if fields:
            return project(data, fields)
        return {k: data[k] for k in TAG_COMPACT} if compact else data

    def user_full(self, gid: str, fields: list[str] | None) -> Record:
        user = self.state.users[gid]
        data = {"gid": gid, "resource_type": "user", "name": user["name"],
                "email": user["email"], "photo": None, "workspaces": [self.workspace()],
                "custom_fields": []}
        return project(data, fields) if fields else data


# -- opt_fields ------------------------------------------------------------------------------

def opt_fields(raw: list[str], known: set[str]) -> list[str] | None:
    """The requested paths; StateError(400) for a top-level field the resource lacks."""
    if not raw:
        return None
    for path in raw:
        head = path.split(".")[0]
        if head not in known and head not in NEXT_PAGE_FIELDS:
            raise StateError(400, f"opt_fields: Unknown field: {path}")
    return raw


def project(value: Any, fields: list[str]) -> Any:
    """Keep ``gid`` and the dotted ``fields`` of ``value``; a field asked for without a
    sub-path keeps its compact form, as opt_fields does."""
    if isinstance(value, list):
        return [project(v, fields) for v in value]
    if not isinstance(value, dict):
        return value
    out = {"gid": value["gid"]} if "gid" in value else {}
    grouped: dict[str, list[str]] = {}
    for path in fields:
        head, _, rest = path.partition(".")
        grouped.setdefault(head, []).append(rest)
    for head, rests in grouped.items():
        if head in value:
            whole = any(not r for r in rests)
            out[head] = value[head] if whole or value[head] is None \
                else project(value[head], [r for r in rests if r])
    return out


# -- pagination ------------------------------------------------------------------------------

def encode_offset(gid: str) -> str:
    raw = json.dumps({"v": 1, "after": gid}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_offset(token: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = str(data["after"])
        int(after)
        return after
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise StateError(400, "offset: Your pagination token is invalid or has expired.") \
            from None


def page_limit(raw: str | None) -> int | None:
    if raw in (None, ""):
        return None
    try:
        limit = int(raw)
    except ValueError:
        raise StateError(400, f"limit: Not a number: {raw}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise StateError(400, f"limit: Must be between 1 and {MAX_LIMIT}")
    return limit


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def paginate(items: list[Record], query: dict[str, list[str]], path: str, base_url: str,
             ) -> tuple[list[Record], dict[str, Any]]:
    """(this page's records, the envelope keys besides data). ``items`` are in gid order;
    next_page appears only when a limit was sent, and is null on the last page."""
    limit = page_limit(_first(query, "limit"))
    offset = _first(query, "offset")
    if offset:
        after = int(decode_offset(offset))
        items = [i for i in items if int(i["gid"]) > after]
    if limit is None:
        if len(items) > TOO_LARGE:
            raise StateError(400, TOO_LARGE_MESSAGE)
        return items, {}
    chunk = items[:limit]
    if len(items) <= limit:
        return chunk, {"next_page": None}
    token = encode_offset(chunk[-1]["gid"])
    args = {k: v for k, v in query.items() if k != "offset"}
    args["offset"] = [token]
    rel = path.removeprefix(API) + "?" + urlencode(args, doseq=True)
    return chunk, {"next_page": {"offset": token, "path": rel, "uri": base_url + API + rel}}
