"""Tether's one comment per task as an Asana story: found by its footer and its author (the
token's user), created once, then edited in place; the writes go out as batch actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tether.sdk import OpKind, SourceError, WriteOp, digest

from .batch import Action, Item
from .client import AsanaClient
from .failures import Where
from .richtext import footer_digest, story_html

STORY_FIELDS = "created_by,resource_subtype,text"
Story = dict[str, Any]


class Comments:
    """Reads Tether's story on a task and plans its writes; ``me`` gives the token user's gid."""

    def __init__(self, client: AsanaClient, me: Callable[[], str]):
        self.client = client
        self.me = me

    def find(self, task: str) -> Story | None:
        """Tether's story on ``task`` (the oldest, should a race have made two); no retry."""
        me = self.me()
        for story in self.client.send_pages(f"/tasks/{task}/stories",
                                            {"opt_fields": STORY_FIELDS}):
            if (story.get("resource_subtype") == "comment_added"
                    and (story.get("created_by") or {}).get("gid") == me
                    and footer_digest(story.get("text") or "")):
                return story
        return None

    def read(self, task: str, where: Where) -> Story | None:
        return self.client.retrying(lambda: self.find(task), where)

    def write(self, op: WriteOp, where: Where) -> StoryWrite:
        """The write of ``op``. An edit is one PUT; a create first looks for Tether's story (a
        stale plan or a lost answer may have made it) and edits that one instead, and looks
        again before any resend, so no retry can post a second comment."""
        html = story_html(op.value)
        if op.kind is OpKind.UPDATE_COMMENT and op.comment_id:
            return StoryWrite(op, Item(self._put(op.key, op.comment_id, html, where)),
                              op.comment_id, existed=True)
        write = StoryWrite(op, Item(None), None, existed=False)

        def decide(story: Story | None) -> Action | None:
            if story is None:
                write.story, write.existed = None, False
                return Action("POST", f"/tasks/{op.key}/stories", {"html_text": html}, where,
                              f"{op.key}:story", ("created_at",))
            write.story, write.existed = str(story["gid"]), True
            if footer_digest(str(story.get("text") or "")) == digest(op.value):
                return None  # already says exactly this
            return self._put(op.key, write.story, html, where)

        try:
            write.item.action = decide(self.read(op.key, where))
        except SourceError as exc:
            write.error = str(exc)
        write.item.recheck = lambda: decide(self.find(op.key))
        return write

    @staticmethod
    def _put(task: str, story: str, html: str, where: Where) -> Action:
        return Action("PUT", f"/stories/{story}", {"html_text": html}, where, f"{task}:story",
                      ("created_at",))


class StoryWrite:
    """One comment op on its way: its batch item, the story it writes (known before for an
    edit, found by the look or made by the POST for a create), and whether that story
    existed before this write."""

    def __init__(self, op: WriteOp, item: Item, story: str | None, existed: bool):
        self.op = op
        self.item = item
        self.story = story
        self.existed = existed
        self.error: str | None = None  # the look before a create failed: nothing was sent

    def outcome(self, client: AsanaClient) -> tuple[bool, str | None, str | None, bool]:
        """(ok, error, story gid, gone). An edit of a story a person deleted (404) is gone:
        nothing is written, the planner respects the deletion rather than repeat it."""
        answer, action = self.item.answer, self.item.action
        if self.error is not None:
            return False, self.error, None, False
        if (answer is not None and answer.status == 404 and action is not None
                and action.method == "PUT" and self.op.kind is OpKind.UPDATE_COMMENT
                and self.op.comment_id and action.path.endswith(f"/{self.op.comment_id}")):
            return True, None, None, True
        failure = self.item.failure(client)
        if failure is not None:
            return False, failure, None, False
        if answer is not None and action is not None and action.method == "POST":
            self.story = str(answer.data.get("gid") or "") or None
        return True, None, self.story, False
