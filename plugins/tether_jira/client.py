"""Every HTTP call Tether makes to Jira, through the ``jira`` library (pycontribs).

The library's own retries are off (``max_retries=0``); each call goes through
``tether.retry.with_retries`` so waits happen on the injected clock. Where the library's
public helper would cost extra requests (``Issue.update`` and ``Comment.update`` re-GET the
resource), the call goes through the library's own session instead, so authentication,
headers and error handling stay the library's."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

from jira import JIRA
from jira.exceptions import JIRAError
from tether.clock import Clock
from tether.errors import SourceError
from tether.retry import with_retries

from .failures import Context, describe, status_of, transient
from .normalise import FieldMap
from .options import CLOUD_STORY_POINTS, JiraOptions

T = TypeVar("T")
MARKER_KEY = "tether"  # the issue property holding {"comment_id", "digest"} of Tether's comment
CLOUD_PAGE = 5000  # /search/jql's documented maximum; Jira returns fewer when fields are asked
DC_PAGE = 1000  # Data Center clamps to jira.search.views.default.max (1000 unless changed)
MAX_PAGES = 10_000  # a guard against a server that never says "last page"
EPIC_LINK_TYPE = "com.pyxis.greenhopper.jira:gh-epic-link"


class JiraClient:
    """One configured site: connects lazily, reconnects when the token variable changes."""

    def __init__(self, options: JiraOptions, clock: Clock):
        self.options = options
        self.clock = clock
        self._jira: JIRA | None = None
        self._token: str | None = None
        self._fields: FieldMap | None = None
        self._zone: tuple[str | None] | None = None

    # -- plumbing -------------------------------------------------------------------------

    def token(self) -> str:
        """The token from the environment, read now; SourceError before any request if unset."""
        value = os.environ.get(self.options.token_env, "").strip()
        if not value:
            raise SourceError(
                f"Jira source at {self.options.base_url}: the environment variable "
                f"${self.options.token_env} is not set; export the Jira "
                f"{'API token' if self.options.flavour == 'cloud' else 'personal access token'}"
                " in it (or point options.token_env at the variable that holds it)")
        return value

    def retrying(self, call: Callable[[], T]) -> T:
        """``call`` with Tether's retry policy; the last error is re-raised as it came."""
        return with_retries(call, transient, self.clock)

    def call(self, call: Callable[[], T], ctx: Context) -> T:
        """``call`` with retries; any failure becomes a SourceError describing ``ctx``."""
        try:
            return self.retrying(call)
        except SourceError:
            raise
        except Exception as exc:
            raise SourceError(describe(exc, ctx)) from None

    def jira(self) -> JIRA:
        """The connected library client (GET serverInfo on first use, flavour checked)."""
        token = self.token()
        if self._jira is not None and token == self._token:
            return self._jira
        if self._jira is not None:
            self._jira.close()
        self._jira, self._token, self._fields, self._zone = None, token, None, None
        opts = self.options
        auth: dict[str, Any] = ({"basic_auth": (opts.email, token)} if opts.flavour == "cloud"
                                else {"token_auth": token})
        # get_server_info=True: the library routes searches by serverInfo's deploymentType.
        client = self.call(partial(
            JIRA, opts.base_url, options={"rest_api_version": opts.api_version,
                                          "check_update": False},
            get_server_info=True, max_retries=0, timeout=opts.timeout, logging=False, **auth),
            Context(opts))
        deployment = client.deploymentType or "Server"
        if (deployment == "Cloud") != (opts.flavour == "cloud"):
            client.close()
            want = "cloud" if deployment == "Cloud" else "datacenter"
            raise SourceError(
                f"Jira at {opts.base_url} reports deploymentType '{deployment}' but "
                f"options.flavour is '{opts.flavour}'; set flavour: {want}")
        self._jira = client
        return client

    def _url(self, path: str) -> str:
        return f"{self.jira().server_url}/rest/api/{self.options.api_version}/{path}"

    # -- setup ----------------------------------------------------------------------------

    def fields(self) -> FieldMap:
        """Field ids for story points, Epic Link and custom fields, from one GET /field.

        The library would GET /field again to translate JQL names in ``fields``; it is given
        the list it would have built, so a full pull costs serverInfo + field + pages."""
        jira = self.jira()
        if self._fields is not None:
            return self._fields
        listing: list[dict[str, Any]] = self.call(jira.fields, Context(self.options))
        jira._fields_cache_value = {name: f["id"] for f in listing  # private: see the docstring
                                    for name in f.get("clauseNames", ())}
        opts = self.options
        resolve = partial(_resolve, listing)
        points = resolve(opts.story_points_field) if opts.story_points_field else (
            CLOUD_STORY_POINTS if opts.flavour == "cloud" else _named(listing, "story points"))
        epic = resolve(opts.epic_link_field) if opts.epic_link_field else (
            None if opts.flavour == "cloud" else _typed(listing, EPIC_LINK_TYPE))
        custom = {name: resolve(fid) or fid for name, fid in opts.custom_fields.items()}
        self._fields = FieldMap(points, epic, custom)
        return self._fields

    def user_zone(self) -> str | None:
        """The token user's time zone: JQL dates are read in it (GET /myself, once)."""
        jira = self.jira()
        if self._zone is None:
            me = self.call(jira.myself, Context(self.options))
            self._zone = (me.get("timeZone"),)
        return self._zone[0]

    # -- reading --------------------------------------------------------------------------

    def search(self, jql: str, fields: list[str]) -> Iterator[list[dict[str, Any]]]:
        """Pages of raw issues (with the Tether issue property) at the largest page size."""
        jira = self.jira()
        ctx = Context(self.options)
        try:
            if self.options.flavour == "cloud":
                yield from self._token_pages(jira, jql, fields)
            else:
                yield from self._offset_pages(jira, jql, fields)
        except SourceError:
            raise
        except Exception as exc:
            if status_of(exc) == 400 and self.options.projects:
                self._check_projects(jira)  # Jira says 400, not 404, for a missing project
            raise SourceError(describe(exc, ctx)) from None

    def _token_pages(self, jira: JIRA, jql: str, fields: list[str]
                     ) -> Iterator[list[dict[str, Any]]]:
        token: str | None = None
        for _ in range(MAX_PAGES):
            page = self.retrying(partial(
                jira.enhanced_search_issues, jql, nextPageToken=token, maxResults=CLOUD_PAGE,
                fields=list(fields), properties=MARKER_KEY, json_result=True))
            issues = page.get("issues") or []
            yield issues
            token = page.get("nextPageToken")  # omitted on the last page
            if not token or page.get("isLast") or not issues:
                return

    def _offset_pages(self, jira: JIRA, jql: str, fields: list[str]
                      ) -> Iterator[list[dict[str, Any]]]:
        start = 0
        for _ in range(MAX_PAGES):
            page = self.retrying(partial(
                jira.search_issues, jql, startAt=start, maxResults=DC_PAGE,
                fields=list(fields), properties=MARKER_KEY, json_result=True))
            issues = page.get("issues") or []
            yield issues
            start += len(issues)  # never the maxResults sent: the server may clamp it
            if not issues or start >= int(page.get("total") or 0):
                return

    def _check_projects(self, jira: JIRA) -> None:
        for key in self.options.projects:
            self.call(partial(jira.project, key), Context(self.options, project=key))

    def marker(self, key: str) -> dict[str, Any] | None:
        """The Tether issue property of ``key``, None when it has none."""
        jira = self.jira()
        try:
            prop = self.retrying(partial(jira.issue_property, key, MARKER_KEY))
        except JIRAError as exc:
            if exc.status_code == 404:
                return None
            raise SourceError(describe(exc, Context(self.options, "marker", key))) from None
        except Exception as exc:
            raise SourceError(describe(exc, Context(self.options, "marker", key))) from None
        value = prop.raw.get("value")
        return value if isinstance(value, dict) else None

    # -- writing --------------------------------------------------------------------------

    def edit_labels(self, key: str, changes: list[dict[str, str]]) -> None:
        """PUT issue ``update.labels`` [{"add": ..}, {"remove": ..}]: 204, no reload."""
        body = json.dumps({"update": {"labels": changes}})
        url = self._url(f"issue/{key}")
        session = self.jira()._session  # private: Issue.update re-GETs
        self.call(partial(session.put, url, data=body), Context(self.options, "labels", key))

    def add_comment(self, key: str, body: Any) -> dict[str, Any]:
        """POST a comment (ADF dict on Cloud, wiki string on DC); the created comment."""
        jira = self.jira()
        comment = self.call(partial(jira.add_comment, key, body),
                            Context(self.options, "comment", key))
        return dict(comment.raw)

    def update_comment(self, key: str, comment_id: str, body: Any) -> dict[str, Any] | None:
        """PUT a comment's body; the updated comment, or None if it no longer exists."""
        url = self._url(f"issue/{key}/comment/{comment_id}")
        session = self.jira()._session  # private: Comment.update re-GETs
        try:
            response = self.retrying(partial(session.put, url, data=json.dumps({"body": body})))
        except JIRAError as exc:
            if exc.status_code == 404:
                return None
            raise SourceError(describe(exc, Context(self.options, "edit-comment", key))) \
                from None
        except Exception as exc:
            raise SourceError(describe(exc, Context(self.options, "edit-comment", key))) \
                from None
        return response.json()

    def set_marker(self, key: str, value: dict[str, Any]) -> None:
        """PUT the Tether issue property of ``key``."""
        jira = self.jira()
        self.call(partial(jira.add_issue_property, key, MARKER_KEY, value),
                  Context(self.options, "marker", key))


def _resolve(listing: list[dict[str, Any]], wanted: str) -> str:
    """A field id for ``wanted`` given as an id, a name or a JQL clause name."""
    low = wanted.lower()
    for f in listing:
        if f.get("id") == wanted:
            return wanted
    for f in listing:
        names = [f.get("name", ""), *f.get("clauseNames", ())]
        if low in (n.lower() for n in names):
            return str(f["id"])
    return wanted


def _named(listing: list[dict[str, Any]], name: str) -> str | None:
    return next((str(f["id"]) for f in listing if str(f.get("name", "")).lower() == name), None)


def _typed(listing: list[dict[str, Any]], custom_type: str) -> str | None:
    return next((str(f["id"]) for f in listing
                 if (f.get("schema") or {}).get("custom") == custom_type), None)
