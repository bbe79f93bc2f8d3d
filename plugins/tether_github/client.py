"""PyGithub aimed at one GitHub (or GHES), with Tether's retries and conditional list pages.

PyGithub's own retry and throttling are off (``retry=None``, ``seconds_between_*=None``):
every call goes through :func:`tether.retry.with_retries`, which sleeps only on the
connector's clock. The API version is pinned with PyGithub's ``api_version`` argument,
which sends ``X-GitHub-Api-Version: 2022-11-28`` on every request. ``lazy=True`` makes
``get_repo``/``get_issue``/``get_comment`` build objects from their URL without a GET.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests
from github import Auth, Github, GithubException
from tether.sdk import Clock, PullDate, RetryPolicy, SourceError, with_retries

from .failures import TRACKER, source_error, transient
from .memory import PageMark
from .options import GitHubOptions

T = TypeVar("T")
API_VERSION = "2022-11-28"
PER_PAGE = 100  # GitHub's maximum for list endpoints
USER_AGENT = "tether-github"  # GitHub refuses requests without a User-Agent
MAX_CACHED_PAGES = 2000
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
_PAGE = re.compile(r"([?&])page=(\d+)")


@dataclass(frozen=True)
class CachedPage:
    """A list page as last answered with 200, kept to stand in for a later 304."""

    etag: str
    items: list[dict[str, Any]]
    next_url: str | None


def next_link(link: str | None) -> str | None:
    """The ``rel="next"`` URL of a Link header, verbatim (GitHub's go to /repositories/{id})."""
    found = _NEXT.search(link or "")
    return found.group(1) if found else None


def following_page(url: str) -> str:
    """``url`` with its ``page`` parameter one higher (page 2 when it has none)."""
    found = _PAGE.search(url)
    if found:
        return f"{url[:found.start(2)]}{int(found.group(2)) + 1}{url[found.end(2):]}"
    return f"{url}{'&' if '?' in url else '?'}page=2"


class GitHubClient:
    """One token's view of ``options.url``; rebuilt when the token variable changes."""

    def __init__(self, options: GitHubOptions, clock: Clock,
                 answered: Callable[[int, Mapping[str, str] | None], None] | None = None,
                 throttle: Callable[[], None] | None = None):
        self.options = options
        self.clock = clock
        self.answered = answered  # told how each request was answered (status, headers)
        self.throttle = throttle  # called before each attempt: waits for the shared budget
        default = RetryPolicy()
        # Waiting for a primary rate-limit reset may take up to an hour; allow that much.
        self.policy = RetryPolicy(attempts=default.attempts,
                                  budget=max(default.budget, options.max_rate_limit_wait + 120),
                                  cap=max(default.cap, options.max_rate_limit_wait))
        self._github: Github | None = None
        self._token: str | None = None
        self._pages: dict[str, CachedPage] = {}
        # GitHub's time when a pull's first list page was asked for (304s are dated too).
        self.dated = PullDate()

    def check_token(self) -> str:
        """The token from ``$token_env``; SourceError naming the variable when it is unset."""
        token = os.environ.get(self.options.token_env, "").strip()
        if not token:
            raise SourceError(f"{TRACKER}: no token: set the environment variable "
                              f"${self.options.token_env} to a GitHub token (fine-grained "
                              "with Issues: read and write, or classic with the repo scope)")
        return token

    def github(self) -> Github:
        """The PyGithub client for the current token (lazy objects, no retries, no throttle)."""
        token = self.check_token()
        if self._github is None or token != self._token:
            if self._github is not None:
                self._github.close()
            self._pages.clear()  # ETags are token-specific
            self._github = Github(
                auth=Auth.Token(token), base_url=self.options.url, per_page=PER_PAGE,
                retry=None, seconds_between_requests=None, seconds_between_writes=None,
                lazy=True, api_version=API_VERSION, user_agent=USER_AGENT, timeout=30)
            self._token = token
        return self._github

    def call(self, fn: Callable[[Github], T], where: str, subject: str) -> T:
        """``fn(github)`` with retries; failures become SourceError (see failures.py)."""
        gh = self.github()
        try:
            return with_retries(
                lambda: self._counted(fn, gh),
                lambda exc: transient(exc, self.clock, self.options.max_rate_limit_wait),
                self.clock, self.policy)
        except SourceError:
            raise
        except Exception as exc:
            raise source_error(exc, where, subject, self.options.token_env, self.options.url,
                               self.clock) from None

    def _counted(self, fn: Callable[[Github], T], gh: Github) -> T:
        """``fn(gh)`` once the shared budget allows, its answer counted (PyGithub keeps its
        session to itself); every attempt with_retries makes comes through here."""
        if self.throttle is not None:
            self.throttle()
        try:
            out = fn(gh)
        except GithubException as exc:
            if self.answered is not None:
                self.answered(exc.status, exc.headers)
            raise
        except requests.RequestException:
            if self.answered is not None:
                self.answered(0, None)
            raise
        if self.answered is not None:
            self.answered(200, None)
        return out

    def fetch(self, path: str) -> tuple[dict[str, Any], Any]:
        """GET ``path``: (headers, JSON body), retrying transient failures but never waiting
        for a spent rate limit; failures propagate as PyGithub raised them (the doctor tells
        them apart)."""
        gh = self.github()
        return with_retries(lambda: self._counted(
                                lambda g: g.requester.requestJsonAndCheck("GET", path), gh),
                            lambda exc: transient(exc, self.clock, 0.0), self.clock, self.policy)

    def pages(self, path: str, params: dict[str, str], where: str, subject: str,
              remembered: Callable[[str], PageMark | None] | None = None,
              answered: dict[str, PageMark] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Every page of the list at ``path`` as raw payloads, following Link headers.

        A page seen before is asked for with ``If-None-Match``: a 304 costs no rate limit
        and the remembered page is used. GitHub's ETag covers the body only, so when a
        remembered last page was full the page after it is asked for too (lists sorted
        oldest first grow at the end).

        ``remembered`` gives the ETag an earlier pass (another process) got for a page URL:
        a 304 to it yields no items, since that pass read and handled the very same page.
        ``answered`` collects, by URL, each page's ETag as it stands after this listing."""
        query = urlencode(sorted({**params, "per_page": str(PER_PAGE)}.items()))
        url: str | None = f"{path}?{query}"
        while url:
            page_url = url
            cached = self._pages.get(page_url)
            mark = None if cached is not None or remembered is None else remembered(page_url)
            etag = cached.etag if cached is not None else mark.etag if mark else None
            headers = {"If-None-Match": etag} if etag else None

            def get(gh: Github, u: str = page_url, h: dict[str, str] | None = headers
                    ) -> tuple[dict[str, Any], Any]:
                return gh.requester.requestJsonAndCheck("GET", u, headers=h)

            started = time.monotonic()  # a duration only: never compared with GitHub's time
            got_headers, data = self.call(get, where, subject)
            self.dated.answered(got_headers.get("date"),
                                timedelta(seconds=time.monotonic() - started))
            if data is None and (cached is not None or mark is not None):  # 304 Not Modified
                if cached is not None:
                    items, url, full = cached.items, cached.next_url, len(cached.items) >= PER_PAGE
                else:
                    assert mark is not None
                    items, url, full = [], self._ours(mark.next_url), mark.full
                if answered is not None and etag:
                    answered[page_url] = PageMark(etag, url, full)  # still this page's
                if url is None and full:
                    url = following_page(page_url)
            else:
                items = data if isinstance(data, list) else []
                url = next_link(got_headers.get("link"))
                self._remember(page_url, got_headers.get("etag"), items, url)
                if answered is not None and got_headers.get("etag"):
                    answered[page_url] = PageMark(got_headers["etag"], url,
                                                  len(items) >= PER_PAGE)
            yield items

    def _ours(self, url: str | None) -> str | None:
        """``url`` if PyGithub may follow it from here (a Link an earlier process remembered
        may name another host or port, e.g. a restarted sandbox's), else None."""
        if url is None or url.startswith("/") or url.startswith(self.options.url + "/"):
            return url
        return None

    def _remember(self, url: str, etag: str | None, items: list[dict[str, Any]],
                  next_url: str | None) -> None:
        if not etag:
            return
        if len(self._pages) >= MAX_CACHED_PAGES:
            self._pages.clear()  # old since= URLs pile up; starting over is cheap
        self._pages[url] = CachedPage(etag, items, next_url)
