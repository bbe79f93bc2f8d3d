"""Every HTTP call Tether makes to Jira, through the ``jira`` library (pycontribs).

The library's own retries are off (``max_retries=0``); each call goes through
``tether.retry.with_retries`` so waits happen on the injected clock. Where the library's
public helper would cost extra requests (``Issue.update`` and ``Comment.update`` re-GET the
resource), the call goes through the library's own session instead, so authentication,
headers and error handling stay the library's.

A client may be used from several threads at once (the writer does): connecting and the
first quiet edit, which decides whether Jira accepts quiet edits, happen under a lock.

What serverInfo and GET /field say (the ``Setup``) may come from an earlier pass instead
(``offer``): the library is then built without its own serverInfo request. Every answer is
dated by the site's clock (its ``Date`` header), so a pull knows when it ran (``reading``)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import requests
from jira import JIRA
from jira.exceptions import JIRAError
from tether.sdk import Clock, PullDate, SourceError, digest, parse_datetime, with_retries

from .failures import Context, describe, quiet_refused, status_of, transient
from .normalise import FieldMap
from .options import CLOUD_STORY_POINTS, JiraOptions

T = TypeVar("T")
# The issue property {"v", "comment_id", "digest"} pointing at Tether's comment, read for free
# with every Cloud search (Data Center's search cannot return issue properties,
# JRASERVER-62898); and the comment property {"v", "digest"} on that comment itself, set in
# the same request that creates it, so the comment is Tether's even if the issue's is not set.
MARKER_KEY = "tether"
COMMENT_PAGE = 5000  # comments per listing page asked for; Jira may send fewer
COMMENT_IDS = 1000  # comment/list takes at most 1000 ids
CLOUD_PAGE = 5000  # /search/jql's documented maximum; Jira returns fewer when fields are asked
DC_PAGE = 1000  # Data Center clamps to jira.search.views.default.max (1000 unless changed)
MAX_PAGES = 10_000  # a guard against a server that never says "last page"
EPIC_LINK_TYPE = "com.pyxis.greenhopper.jira:gh-epic-link"
# A remembered Setup is read again once this old by the site's clock: a field renamed or
# recreated (Story Points found by name on Data Center) is picked up within a day.
SETUP_TTL = timedelta(days=1)


@dataclass(frozen=True)
class Setup:
    """What a pass must know of the site before it searches: serverInfo's deploymentType and
    versionNumbers, and the field ids GET /field resolved for these options, with the
    library's JQL-name translation of the fields searched; ``read_at`` is the site's time
    when they were read (None: unknown, so never remembered)."""

    deployment: str
    version: tuple[int, ...]
    fields: FieldMap
    names: dict[str, str]
    read_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"deployment": self.deployment, "version": list(self.version),
                "points": self.fields.story_points, "epic": self.fields.epic_link,
                "custom": dict(self.fields.custom), "names": dict(self.names),
                "read_at": self.read_at.isoformat() if self.read_at else None}

    @classmethod
    def from_json(cls, data: Any) -> Setup | None:
        """The setup ``to_json`` wrote; None for anything else (memory is only a hint)."""
        try:
            fields = FieldMap(_text(data["points"]), _text(data["epic"]),
                              {str(k): str(v) for k, v in dict(data["custom"]).items()})
            names = {str(k): str(v) for k, v in dict(data["names"]).items()}
            read_at = parse_datetime(str(data["read_at"]))
            version = tuple(int(n) for n in data["version"])
            deployment = str(data["deployment"])
        except (KeyError, TypeError, ValueError):
            return None
        if read_at is None or not names:
            return None
        return cls(deployment, version, fields, names, read_at)


def setup_key(options: JiraOptions) -> str:
    """Names what a Setup was resolved for: a remembered one serves only the same options
    (a field added to them is one it never resolved)."""
    return digest(json.dumps([options.flavour, options.api_version, options.story_points_field,
                              options.epic_link_field, sorted(options.custom_fields.items())]))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class FlavourMismatch(SourceError):
    """The site is Cloud and options say Data Center, or the other way round."""

    def __init__(self, message: str, want: str):
        super().__init__(message)
        self.want = want  # the flavour the site reports: "cloud" or "datacenter"


class JiraClient:
    """One configured site: connects lazily, reconnects when the token variable changes."""

    def __init__(self, options: JiraOptions, clock: Clock,
                 counted: Callable[[Any], None] | None = None):
        self.options = options
        self.counted = counted  # told of each session made, to count its requests
        self.clock = clock
        self._jira: JIRA | None = None
        self._token: str | None = None
        self._setup: Setup | None = None  # serverInfo and /field as read, or as offered
        self._server: tuple[str, tuple[int, ...], datetime | None] | None = None  # serverInfo
        self._offered: Setup | None = None  # an earlier pass's, used instead of asking
        self.dated = PullDate()  # the site's time when a pull's first request reached it
        self._quiet: bool | None = None  # may edits go with notifyUsers=false? None: not tried
        # Who the token acts as ({accountId} on Cloud, {name, key} on Data Center), from
        # /myself or the author of Tether's own comment writes: webhooks it made are echoes.
        self.account: dict[str, str] | None = None
        self._connecting = threading.RLock()
        self._probing = threading.Lock()  # one quiet edit at a time until Jira has answered

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
        """The connected library client (GET serverInfo on first use unless a setup was
        offered, flavour checked)."""
        try:
            return self.connect()
        except SourceError:
            raise
        except Exception as exc:
            raise SourceError(describe(exc, Context(self.options))) from None

    def connect(self) -> JIRA:
        """Like ``jira``, but a failure to connect propagates as the library raised it
        (after retries), for callers that tell 401 from a network error (the doctor);
        FlavourMismatch when the site is not of the configured flavour."""
        with self._connecting:
            return self._connect()

    def _connect(self) -> JIRA:
        token = self.token()
        if self._jira is not None and token == self._token:
            return self._jira
        if self._jira is not None:
            self._jira.close()
        self._jira, self._token, self._setup, self._server = None, token, None, None
        opts = self.options
        auth: dict[str, Any] = ({"basic_auth": (opts.email, token)} if opts.flavour == "cloud"
                                else {"token_auth": token})
        # get_server_info=False: constructing makes no request; serverInfo is asked below
        # (or taken from an offered setup), and its answer set as the library would set it.
        client = JIRA(opts.base_url, options={"rest_api_version": opts.api_version,
                                              "check_update": False},
                      get_server_info=False, max_retries=0, timeout=opts.timeout,
                      logging=False, **auth)
        client._session.hooks["response"].append(self.dated.hook)  # requests' public hook list
        if self.counted is not None:
            self.counted(client._session)
        try:
            self._identify(client, self._offered)
        except BaseException:
            client.close()
            raise
        self._jira = client
        return client

    def _identify(self, client: JIRA, offered: Setup | None) -> None:
        """Set what the library's get_server_info=True would (deploymentType, which routes
        searches and ``@cloud_api`` methods, and the version) from serverInfo, or from the
        ``offered`` setup without a request; FlavourMismatch when the site is the other one."""
        if offered is not None:
            self._server = (offered.deployment, offered.version, offered.read_at)
            self._setup = offered
        else:
            info: dict[str, Any] = self.retrying(client.server_info)
            numbers = info.get("versionNumbers") or ()
            self._server = (str(info.get("deploymentType") or "Server"),
                            tuple(int(n) for n in numbers if isinstance(n, int)),
                            _server_time(info.get("serverTime")) or self.dated.at)
        deployment, version, _ = self._server
        client.deploymentType = deployment
        client._version = version  # private: the library keeps versionNumbers here
        opts = self.options
        if (deployment == "Cloud") != (opts.flavour == "cloud"):
            want = "cloud" if deployment == "Cloud" else "datacenter"
            raise FlavourMismatch(
                f"Jira at {opts.base_url} reports deploymentType '{deployment}' but "
                f"options.flavour is '{opts.flavour}'; set flavour: {want}", want)

    def get(self, path: str, params: dict[str, str] | None = None) -> requests.Response:
        """GET ``path`` under this site's REST API through the library's session, with
        retries; the response (headers included), or the library's error as raised."""
        session = self.connect()._session  # private: the library's helpers drop headers
        return self.retrying(partial(session.get, self._url(path), params=params))

    def _url(self, path: str) -> str:
        return f"{self.jira().server_url}/rest/api/{self.options.api_version}/{path}"

    # -- setup ----------------------------------------------------------------------------

    def offer(self, setup: Setup | None) -> None:
        """Use ``setup`` (an earlier pass's, for these options) instead of asking serverInfo
        and /field, while it is younger than SETUP_TTL by the site's clock (``fields`` checks
        against ``reading``). Only a client not yet connected takes it."""
        self._offered = setup

    def setup(self) -> Setup | None:
        """What serverInfo and /field said (or the setup offered), once ``fields`` ran, if
        the site's time when they were read is known; else None (not worth remembering)."""
        setup = self._setup
        return setup if setup is not None and setup.read_at is not None else None

    def fields(self) -> FieldMap:
        """Field ids for story points, Epic Link and custom fields: read once per connection
        from serverInfo and one GET /field, unless a setup was offered that is younger than
        SETUP_TTL by ``reading``.

        The library would GET /field again to translate JQL names in ``fields``; it is given
        the translations it would have made, so a full pull costs serverInfo + field + pages
        and a pass with a setup offered none of them."""
        jira = self.jira()
        setup = self._setup
        if setup is not None and setup is self._offered and self._aged(setup.read_at):
            self._setup = self._offered = None  # remembered too long ago: read the site again
            self._identify(jira, None)
            setup = None
        if setup is not None:
            jira._fields_cache_value = dict(setup.names)  # private: see the docstring
            return setup.fields
        listing: list[dict[str, Any]] = self.call(jira.fields, Context(self.options))
        opts = self.options
        resolve = partial(_resolve, listing)
        points = resolve(opts.story_points_field) if opts.story_points_field else (
            CLOUD_STORY_POINTS if opts.flavour == "cloud" else _named(listing, "story points"))
        epic = resolve(opts.epic_link_field) if opts.epic_link_field else (
            None if opts.flavour == "cloud" else _typed(listing, EPIC_LINK_TYPE))
        custom = {name: resolve(fid) or fid for name, fid in opts.custom_fields.items()}
        fields = FieldMap(points, epic, custom)
        by_clause = {name: str(f["id"]) for f in listing for name in f.get("clauseNames", ())}
        # Only the translations of the fields Tether searches: all the library will look up.
        names = {name: by_clause.get(name, name) for name in fields.requested()}
        jira._fields_cache_value = dict(names)  # private: see the docstring
        assert self._server is not None  # set on connecting
        deployment, version, read_at = self._server
        self._setup = Setup(deployment, version, fields, names, read_at or self.dated.at)
        return fields

    def _aged(self, read_at: datetime | None) -> bool:
        """Whether a setup read at ``read_at`` is too old to trust now, or its age unknown
        (no reading of the site's clock this pass)."""
        now = self.dated.at
        return now is None or read_at is None or now - read_at >= SETUP_TTL

    def user_zone(self) -> str | None:
        """The token user's time zone, from GET /myself on every call: JQL dates are read in
        it, so a pass re-checks it (a user who moved zone would shift every date filter);
        the same request shows the token still works."""
        jira = self.jira()
        me = self.call(jira.myself, Context(self.options))
        self.note_account(me)
        zone = me.get("timeZone")
        return str(zone) if zone else None

    # -- reading --------------------------------------------------------------------------

    def search(self, jql: str, fields: list[str]) -> Iterator[list[dict[str, Any]]]:
        """Pages of raw issues at the largest page size (on Cloud with the Tether issue
        property; Data Center's search cannot return it, so it is not asked for there)."""
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
            page = self.retrying(partial(_offset_page, jira, jql, start, list(fields)))
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

    # -- Tether's comment, found by its own property ---------------------------------------

    def comments(self, key: str) -> list[dict[str, Any]]:
        """Every comment of ``key`` with its ``properties`` (a list of {key, value}), oldest
        first: one listing (pages of 5000) and, on Cloud, one comment/list per 1000.

        Cloud documents comment properties in bulk only through POST comment/list with
        expand=properties; the issue's comment listing documents renderedBody alone, so it
        is used just for the ids. Data Center has no comment/list; its listing takes
        expand=properties (what Server and DC clients rely on), one request per page, where
        a GET comment/{id}/properties/{key} per comment would cost one each."""
        ctx = Context(self.options, "comments", key)
        session = self.jira()._session  # private: the library has no paged comment listing
        cloud = self.options.flavour == "cloud"
        listed: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            params = {"startAt": str(len(listed)), "maxResults": str(COMMENT_PAGE)}
            if not cloud:
                params["expand"] = "properties"
            page = self.call(partial(session.get, self._url(f"issue/{key}/comment"),
                                     params=params), ctx).json()
            got = page.get("comments") or []
            listed += got
            if not got or len(listed) >= int(page.get("total") or 0):
                break
        if cloud and listed:
            ids = sorted({int(c["id"]) for c in listed})
            listed = []
            for n in range(0, len(ids), COMMENT_IDS):
                body = json.dumps({"ids": ids[n:n + COMMENT_IDS]})
                page = self.call(partial(session.post, self._url("comment/list"),
                                         params={"expand": "properties"}, data=body), ctx).json()
                listed += page.get("values") or []
        return sorted(listed, key=lambda c: int(c["id"]))  # ids grow with creation

    # -- writing --------------------------------------------------------------------------

    @property
    def notify_mode(self) -> str:
        """"quiet": edits go with notifyUsers=false; "notifying": Jira refused that (the
        token's user administers neither Jira nor the project); "unknown": no edit yet."""
        return {None: "unknown", True: "quiet", False: "notifying"}[self._quiet]

    def _edit(self, send: Callable[[dict[str, str]], T], quiet: bool = True) -> T:
        """``send(query)`` with retries, asking Jira not to notify watchers of this edit of
        Tether's own annotations, until Jira refuses that once; from then on this client
        sends edits plainly, so a refusal costs one extra request per run. Until Jira has
        answered one quiet edit, concurrent edits wait for that answer."""
        if quiet and self._quiet is None:
            with self._probing:
                if self._quiet is None:
                    return self._send(send, quiet)
        return self._send(send, quiet)

    def _send(self, send: Callable[[dict[str, str]], T], quiet: bool) -> T:
        if quiet and self._quiet is not False:
            try:
                result = self.retrying(partial(send, {"notifyUsers": "false"}))
            except JIRAError as exc:
                if not quiet_refused(exc):
                    raise
                self._quiet = False
            else:
                self._quiet = True
                return result
        return self.retrying(partial(send, {}))

    def edit_labels(self, key: str, changes: list[dict[str, str]]) -> None:
        """PUT issue ``update.labels`` [{"add": ..}, {"remove": ..}] quietly: 204, no reload."""
        body = json.dumps({"update": {"labels": changes}})
        url = self._url(f"issue/{key}")
        session = self.jira()._session  # private: Issue.update re-GETs
        try:
            self._edit(lambda query: session.put(url, params=query, data=body))
        except Exception as exc:
            raise SourceError(describe(exc, Context(self.options, "labels", key))) from None

    def add_comment(self, key: str, body: Any, marker: dict[str, Any]) -> dict[str, Any]:
        """POST a comment (ADF dict on Cloud, wiki string on DC) carrying the Tether comment
        property ``marker`` in the same request; the created comment.

        A POST that failed without an answer (reset, timeout, 5xx) may have landed. Before
        posting again, Tether's comment is looked for by its property and edited instead,
        so a retry never writes a second one. A 429 is refused before anything is written."""
        url = self._url(f"issue/{key}/comment")
        session = self.jira()._session  # private: add_comment cannot send properties
        payload = json.dumps({"body": body, "properties": [{"key": MARKER_KEY,
                                                            "value": marker}]})
        landed = False  # whether an earlier attempt may have written the comment

        def attempt() -> dict[str, Any]:
            nonlocal landed
            if landed:
                found = self._tether_comment(key)
                if found is not None:
                    same = comment_marker(found) == marker
                    edited = found if same else self.update_comment(key, str(found["id"]),
                                                                    body, marker)
                    if edited is not None:
                        return edited
            try:
                created: dict[str, Any] = session.post(url, data=payload).json()
            except Exception as exc:
                landed = status_of(exc) != 429
                raise
            self.note_account(created.get("author"))
            return created

        return self.call(attempt, Context(self.options, "comment", key))

    def _tether_comment(self, key: str) -> dict[str, Any] | None:
        """The oldest comment of ``key`` carrying the Tether comment property."""
        return next((c for c in self.comments(key) if comment_marker(c)), None)

    def update_comment(self, key: str, comment_id: str, body: Any, marker: dict[str, Any]
                       ) -> dict[str, Any] | None:
        """PUT a comment's body and its Tether property (Cloud: quietly); the updated
        comment, or None if it no longer exists. Sending the property on every edit also
        marks comments written before comments carried one."""
        url = self._url(f"issue/{key}/comment/{comment_id}")
        session = self.jira()._session  # private: Comment.update re-GETs
        data = json.dumps({"body": body, "properties": [{"key": MARKER_KEY, "value": marker}]})
        # Cloud documents notifyUsers on comment edits; Data Center's comment edit does not
        # (as far as we found), so there the edit notifies watchers as any edit would.
        quiet = self.options.flavour == "cloud"
        try:
            response = self._edit(lambda query: session.put(url, params=query, data=data),
                                  quiet)
        except JIRAError as exc:
            if exc.status_code == 404:
                return None
            raise SourceError(describe(exc, Context(self.options, "edit-comment", key))) \
                from None
        except Exception as exc:
            raise SourceError(describe(exc, Context(self.options, "edit-comment", key))) \
                from None
        edited: dict[str, Any] = response.json()
        self.note_account(edited.get("updateAuthor"))
        return edited

    def note_account(self, user: Any) -> None:
        """Remember who the token acts as, from a user object Jira returned for it."""
        found = account_of(user)
        if found:
            self.account = found

    def set_marker(self, key: str, value: dict[str, Any]) -> None:
        """PUT the Tether issue property of ``key``."""
        jira = self.jira()
        self.call(partial(jira.add_issue_property, key, MARKER_KEY, value),
                  Context(self.options, "marker", key))


def account_of(user: Any) -> dict[str, str]:
    """The names a Jira user object gives its user: accountId (Cloud), name and key (Data
    Center); empty when it gives none."""
    if not isinstance(user, dict):
        return {}
    return {k: str(user[k]) for k in ("accountId", "name", "key")
            if isinstance(user.get(k), str) and user[k]}


def comment_marker(comment: dict[str, Any]) -> dict[str, Any] | None:
    """The Tether property of ``comment`` (as listed with expand=properties), if it has one."""
    for prop in comment.get("properties") or ():
        if isinstance(prop, dict) and prop.get("key") == MARKER_KEY:
            value = prop.get("value")
            return value if isinstance(value, dict) else None
    return None


def _offset_page(jira: JIRA, jql: str, start: int, fields: list[str]) -> dict[str, Any]:
    """One Data Center search page as JSON (a named function: mypy types a ``partial`` of
    the overloaded ``search_issues`` by its first overload, not the ``json_result`` one).
    No ``properties``: Data Center's search ignores it (JRASERVER-62898)."""
    return jira.search_issues(jql, startAt=start, maxResults=DC_PAGE, fields=fields,
                              json_result=True)


def _server_time(value: Any) -> datetime | None:
    """serverInfo's serverTime ("2025-05-05T11:00:00.000+0200"), None if unreadable."""
    try:
        return parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None


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
