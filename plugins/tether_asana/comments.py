"""Tether's one comment per task as an Asana story: found by its footer and its author (the
token's user), created once, then edited in place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tether.sdk import digest

from .client import AsanaClient
from .failures import AsanaHTTPError, Where
from .richtext import footer_digest, story_html

STORY_FIELDS = "created_by,resource_subtype,text"
Story = dict[str, Any]


class Comments:
    """Reads and writes Tether's story on a task; ``me`` gives the token user's gid."""

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

    def create(self, task: str, markdown: str, where: Where) -> tuple[str, bool]:
        """(story gid, whether one already existed). Looks before it posts, inside the retried
        unit, so neither a stale plan nor a lost reply can make a second comment."""
        html = story_html(markdown)

        def find_or_post() -> tuple[str, bool]:
            story = self.find(task)
            if story is not None:
                if footer_digest(story.get("text") or "") != digest(markdown):
                    self._put(story["gid"], html)
                return story["gid"], True
            body = self.client.send("POST", f"/tasks/{task}/stories",
                                    {"opt_fields": "created_at"}, {"html_text": html})
            return body["data"]["gid"], False

        return self.client.retrying(find_or_post, where)

    def update(self, story: str, markdown: str, where: Where) -> bool:
        """Edit ``story`` in place; False when it is gone (a person deleted it), and then
        nothing is written: the planner respects the deletion rather than repeat it."""
        html = story_html(markdown)

        def put() -> bool:
            try:
                self._put(story, html)
            except AsanaHTTPError as exc:
                if exc.status == 404:
                    return False
                raise
            return True

        return self.client.retrying(put, where)

    def _put(self, story: str, html: str) -> None:
        self.client.send("PUT", f"/stories/{story}", {"opt_fields": "created_at"},
                         {"html_text": html})
