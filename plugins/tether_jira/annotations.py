"""What an issue shows of Tether: its labels and the issue property marking Tether's comment.

Jira rewrites comment bodies (ADF, wiki), so Tether's comment is found by the ``tether``
issue property ``{"v": 1, "comment_id": .., "digest": ..}``, never by its text. The
search requests ``properties=tether``, so the pulled payload already says which comment is
Tether's and reading annotations costs no request. A person editing the comment's text
leaves the marker in place: Tether keeps editing that same comment, and overwrites the
person's words only when its own verdict changes (the digest is of what Tether wrote).

The comment also carries a ``tether`` comment property ``{"v": 1, "digest": ..}``, set in
the request that creates it: when the issue property could not be written (a crash, a lost
answer, a refused PUT), ``JiraConnector.recover`` still finds the comment by it.

Data Center's search returns no issue property (JRASERVER-62898): there a pulled issue shows
its labels only, and Tether's comment comes from the connector's memory or one comment
listing (see ``tether_jira.recall``)."""

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
    updated: str | None = None  # the issue's ``updated``, as Jira printed it in that payload
    # Whether ``marker`` is Jira's word (a payload with the property, a comment listing,
    # Tether's own write). False on Data Center's search, which cannot show the property,
    # and for a comment recalled from memory: a create then asks Jira first.
    sure: bool = True

    @classmethod
    def from_issue(cls, issue: dict[str, Any], asked: bool = False,
                   marked: bool = True) -> Shown | None:
        """From a payload that carried labels and the ``tether`` property; None if it did not.
        ``asked``: the payload answers our own search, which requested the property, so a
        missing ``properties`` object means the issue has none. ``marked`` False: the search
        cannot return properties (Data Center), so the marker is unknown, not absent."""
        fields = issue.get("fields")
        if not isinstance(fields, dict) or "labels" not in fields:
            return None
        if "properties" not in issue and not asked:
            return None
        labels = frozenset(fields.get("labels") or ())
        stamp = fields.get("updated")
        updated = str(stamp) if stamp not in (None, "") else None
        if not marked:
            return cls(labels, updated=updated, sure=False)
        props = issue.get("properties") or {}
        return cls(labels, Marker.parse(props.get(MARKER_KEY)), updated=updated)

    def with_labels(self, add: set[str], remove: set[str]) -> Shown:
        return replace(self, labels=(self.labels | add) - remove)

    def current(self, prefix: str) -> CurrentAnnotation:
        """Only labels in Tether's namespace; the comment by its marker."""
        mine = frozenset(label for label in self.labels if label.startswith(prefix + ":"))
        if self.marker is None:
            return CurrentAnnotation(mine)
        return CurrentAnnotation(mine, self.text, self.marker.comment_id, self.marker.digest)
