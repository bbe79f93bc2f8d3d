"""What an issue shows of Tether: its labels and the issue property marking Tether's comment.

Jira rewrites comment bodies (ADF, wiki), so Tether's comment is found by the ``tether``
issue property ``{"v": 1, "comment_id": .., "digest": ..}``, never by its text. The
search requests ``properties=tether``, so the pulled payload already says which comment is
Tether's and reading annotations costs no request. A person editing the comment's text
leaves the marker in place: Tether keeps editing that same comment, and overwrites the
person's words only when its own verdict changes (the digest is of what Tether wrote).

The comment also carries a ``tether`` comment property ``{"v": 1, "digest": ..}``, set in
the request that creates it: when the issue property could not be written (a crash, a lost
answer, a refused PUT), ``JiraConnector.recover`` still finds the comment by it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from tether.sdk import CurrentAnnotation

from .client import MARKER_KEY

VERSION = 1


@dataclass(frozen=True)
class Marker:
    """Which comment is Tether's, and the digest of the body Tether last asked to write."""

    comment_id: str
    digest: str

    def value(self) -> dict[str, Any]:
        return {"v": VERSION, "comment_id": self.comment_id, "digest": self.digest}

    @classmethod
    def parse(cls, value: Any) -> Marker | None:
        if not isinstance(value, dict) or not value.get("comment_id"):
            return None
        return cls(str(value["comment_id"]), str(value.get("digest") or ""))


@dataclass(frozen=True)
class Shown:
    """An issue's labels (all of them) and Tether's comment, as last seen or written."""

    labels: frozenset[str]
    marker: Marker | None = None
    text: str | None = None  # the comment as Jira returned it after Tether's own write

    @classmethod
    def from_issue(cls, issue: dict[str, Any], asked: bool = False) -> Shown | None:
        """From a payload that carried labels and the ``tether`` property; None if it did not.
        ``asked``: the payload answers our own search, which requested the property, so a
        missing ``properties`` object means the issue has none."""
        fields = issue.get("fields")
        if not isinstance(fields, dict) or "labels" not in fields:
            return None
        if "properties" not in issue and not asked:
            return None
        props = issue.get("properties") or {}
        return cls(frozenset(fields.get("labels") or ()), Marker.parse(props.get(MARKER_KEY)))

    def with_labels(self, add: set[str], remove: set[str]) -> Shown:
        return replace(self, labels=(self.labels | add) - remove)

    def current(self, prefix: str) -> CurrentAnnotation:
        """Only labels in Tether's namespace; the comment by its marker."""
        mine = frozenset(label for label in self.labels if label.startswith(prefix + ":"))
        if self.marker is None:
            return CurrentAnnotation(mine)
        return CurrentAnnotation(mine, self.text, self.marker.comment_id, self.marker.digest)
