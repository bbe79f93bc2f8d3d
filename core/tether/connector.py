"""What a connector plugin implements: pull tasks, read and write Tether's annotations."""

from __future__ import annotations

import hashlib
import os
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from tether.clock import Clock
from tether.model import KPI, CurrentAnnotation, Measurement, OpResult, Task, WriteOp
from tether.ratelimit import Budget, Limiter
from tether.webhook import Delivery, Hook, HooksByHand, HookSecrets, Refused


class Options(BaseModel):
    """Base for a connector's options; unknown keys are errors so typos get located."""

    model_config = ConfigDict(extra="forbid")


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def variable_name(value: str, example: str) -> str:
    """``value`` if it names an environment variable (a secret's name, never the secret);
    else ValueError saying so, with ``example``. For options' field validators."""
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an environment variable name: write the "
                         f"variable's name (e.g. {example}), not its value")
    return value


@dataclass(frozen=True)
class Capabilities:
    """What a tracker can show: the planner adapts its ops and markup to it."""

    labels: bool = True
    comments: bool = True
    comments_editable: bool = True
    # The markup the connector turns Tether's Markdown into (markdown, adf, wiki, asana,
    # text); a template named comment.<markup>.md.j2 serves that markup only.
    markup: str = "markdown"
    mentions: str = "none"  # how a person is mentioned: account_id, username, login, gid, none
    max_label_length: int = 255


@dataclass(frozen=True)
class Check:
    """One line of `tether doctor`: ``ok`` True passed, False failed (``fix`` says what to
    do), None could not tell or was skipped (``detail`` says why)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class PullResult:
    """Tasks pulled in one pass. ``complete`` means these are all the source's tasks."""

    tasks: list[Task]
    cursor: str | None
    complete: bool


class Connector(ABC):
    """One configured source. Subclasses set ``type_name`` and ``options_model``."""

    type_name: ClassVar[str]
    options_model: ClassVar[type[Options]] = Options
    # A class default; a connector whose tracker flavour changes what it can show (Jira
    # Cloud or Data Center) sets its own per instance, once it knows.
    capabilities: Capabilities = Capabilities()

    def __init__(self, name: str, options: Options, base_dir: Path, clock: Clock | None = None):
        self.name = name
        self.options = options
        self.base_dir = base_dir  # the folder of tether.yaml; relative paths resolve here
        self.clock = clock or Clock()  # retries sleep on it, so tests never wait
        # Told (items so far, total if known) after each page a pull reads; the CLI draws
        # a progress bar from it.
        self.progress: Callable[[int, int | None], None] | None = None
        # By key, the comment Tether last knew on an item (None: it never wrote one there),
        # from the state store, set before each read; a connector may skip looking for a
        # comment where this suffices. Never trusted for a write: a create still checks.
        self.known_comments: Mapping[str, str | None] = {}
        # JSON-ready notes the connector keeps between passes (ETags, sync tokens, the
        # comment it last saw per item): loaded from the state store before the pull, saved
        # after the pass. A hint to save requests, never a fact to write on: losing it may
        # cost requests, never correctness.
        self.memory: dict[str, Any] = {}
        # The requests this connector sent its tracker, by how they were answered (see
        # answered); `tether serve` exports them, the JSON output of a pass lists them.
        self.requests: Counter[str] = Counter()
        # The budget shared by every process sending with this token (see throttle); None:
        # requests go as fast as the tracker answers (tether.work.limits sets one).
        self.limiter: Limiter | None = None

    # The tracker's published per-token limit; None when it publishes no fixed number.
    published_budget: ClassVar[Budget | None] = None

    def throttle(self) -> None:
        """Wait, on the connector's clock, until the shared budget grants one request; call
        it before sending each one. Without a limiter it returns at once."""
        if self.limiter is None:
            return
        while (wait := self.limiter.wait()) > 0:
            self.clock.sleep(wait)

    def budget_key(self) -> str:
        """A stable name for this source's token that reveals nothing of it: sources with
        the same type, URL and token share a budget. The source's name when no token is set."""
        options = self.options
        url = getattr(options, "url", None) or getattr(options, "base_url", None) or ""
        variable = getattr(options, "token_env", None)
        token = os.environ.get(variable, "").strip() if isinstance(variable, str) else ""
        if not token:
            return self.name
        seen = "\0".join((self.type_name, str(url).rstrip("/"), token))
        return hashlib.sha256(seen.encode()).hexdigest()[:16]

    # The option listing the source's scopes ("repos", "projects"): a pass spread over
    # workers pulls and writes each scope on its own (see ``shards``). None: the source is
    # one shard.
    scope_option: ClassVar[str | None] = None

    def shards(self) -> list[str]:
        """The scopes this source splits into for workers (none: it is pulled whole)."""
        if self.scope_option is None:
            return []
        return list(getattr(self.options, self.scope_option) or [])

    def narrowed(self, scope: str) -> Connector:
        """A connector like this one for ``scope`` alone (one of ``shards()``): same name, so
        its items keep their refs; its own cursor and memory are kept by the caller."""
        assert self.scope_option is not None, f"{self.type_name} does not split into scopes"
        options = self.options.model_copy(update={self.scope_option: [scope]})
        narrow = type(self)(self.name, options, self.base_dir, self.clock)
        narrow.limiter = self.limiter  # the same token, so the same budget
        return narrow

    def scope_of(self, task: Task) -> str | None:
        """Which of ``shards()`` pulled ``task`` (a whole-source pull tells the store, so a
        later pass spread over workers finds each item's scope); None if none can tell."""
        return None

    def answered(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        """Count one request the tracker answered with ``status``: "ok" (below 400),
        "throttled" (429, or 403 with a rate-limit header: GitHub's), "refused" (other
        4xx) or "failed" (5xx); status 0: no answer came ("failed")."""
        said = {name.lower(): value for name, value in (headers or {}).items()}
        limited = "retry-after" in said or said.get("x-ratelimit-remaining") == "0"
        throttled = status == 429 or (status == 403 and limited)
        self.requests["ok" if 0 < status < 400 else "throttled" if throttled
                      else "refused" if 400 <= status < 500 else "failed"] += 1
        if throttled and self.limiter is not None:
            self.limiter.pause(self._told_to_wait(said))

    def _told_to_wait(self, said: Mapping[str, str]) -> float:
        """Seconds a throttled answer's headers (lower-cased) say to wait: Retry-After
        (seconds or an HTTP date), else GitHub's x-ratelimit-reset (epoch seconds); at least
        one second, so a bare 429 still slows everyone down."""
        now = self.clock.now().timestamp()  # the connector's clock, as its retries use
        retry, reset = said.get("retry-after", "").strip(), said.get("x-ratelimit-reset", "")
        seconds = 0.0
        with suppress(TypeError, ValueError):  # unreadable: the minimum
            if retry:
                seconds = (float(retry) if retry.replace(".", "", 1).isdigit()
                           else parsedate_to_datetime(retry).timestamp() - now)
            elif reset:  # Jira Cloud's ISO reset fails here, but it comes with a Retry-After
                seconds = float(reset) - now
        return max(1.0, seconds)

    def count_requests(self, session: Any) -> None:
        """Count every answer a ``requests`` session gets (a response hook), and hold each
        request it sends (retries and redirects too: they all go through ``send``) until
        the shared budget grants it (see throttle)."""
        session.hooks["response"].append(
            lambda response, *args, **kwargs: self.answered(response.status_code,
                                                            response.headers))
        send = session.send  # requests.Session.request calls self.send: this one, then

        def throttled_send(request: Any, **kwargs: Any) -> Any:
            self.throttle()
            return send(request, **kwargs)

        session.send = throttled_send

    def report_progress(self, done: int, total: int | None = None) -> None:
        """Say how far a pull has got; connectors call it after each page."""
        if self.progress is not None:
            self.progress(done, total)

    @abstractmethod
    def pull(self, cursor: str | None) -> PullResult:
        """Return tasks changed since ``cursor`` (all of them when it is None)."""

    @abstractmethod
    def read_annotations(self, tasks: Sequence[Task], prefix: str) -> dict[str, CurrentAnnotation]:
        """Return, by task key, the labels under ``prefix`` and Tether's comment of each task."""

    def diagnose(self) -> list[Check]:
        """Read-only checks of this source (token, auth, read and write access, rate-limit
        headroom), each with a fix when it fails; never writes to the tracker."""
        return [Check("self-check", None, f"the {self.type_name} connector cannot check "
                      "itself; run `tether plan` to try it")]

    def notices(self) -> list[str]:
        """What the PMO should know after this connector's writes (e.g. that edits notify
        watchers because the tracker refused to keep them quiet); none by default."""
        return []

    def recover(self, tasks: Sequence[Task], prefix: str) -> dict[str, CurrentAnnotation]:
        """Like ``read_annotations``, for tasks whose last write was interrupted (a crash or
        a lost response): look past caches and indexes for a comment Tether may have
        written, so it is edited rather than written twice. The default trusts the read."""
        return self.read_annotations(tasks, prefix)

    def receive(self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str],
                secrets: HookSecrets, prefix: str) -> Delivery:
        """Verify one webhook delivery exactly as the tracker signs it, and read which items
        it touches and whether it is only the echo of Tether's own writes (``prefix``: its
        label namespace). ``query``: the delivery URL's parameters (set when the hook was
        installed). Raises ``Refused`` for anything that must change nothing. The default,
        for trackers without webhooks, refuses every delivery."""
        raise Refused(404, f"{self.name}: the {self.type_name} connector takes no webhooks; "
                           "scheduled passes keep it up to date")

    def hooks(self, url: str) -> list[Hook]:
        """The webhooks the tracker keeps that post to ``url`` (Tether's endpoint for this
        source), one per scope at most. Trackers whose webhooks are not set up through
        their API keep this default, which raises HooksByHand with the steps."""
        raise HooksByHand(f"{self.name}: set up a webhook to {url} in the {self.type_name} "
                          "tracker by hand; Tether cannot do it through its API")

    def install_hooks(self, url: str) -> list[Hook]:
        """Give every scope of the source a webhook posting to ``url``, signed with the
        secret Tether holds; returns the hooks made (existing ones are kept)."""
        return self._by_hand(url)

    def remove_hooks(self, url: str) -> list[Hook]:
        """Remove the webhooks posting to ``url``; returns them."""
        return self._by_hand(url)

    def _by_hand(self, url: str) -> list[Hook]:
        self.hooks(url)  # raises HooksByHand, or the connector overrides all three
        raise NotImplementedError(f"{type(self).__name__} lists hooks but cannot change them")

    @abstractmethod
    def apply(self, ops: Sequence[WriteOp]) -> list[OpResult]:
        """Perform ``ops`` idempotently; one failing op never stops the others. An
        UPDATE_COMMENT whose comment is gone reports ``gone`` and writes nothing; a
        CREATE_COMMENT edits Tether's comment instead when one exists after all."""


class KpiSource(ABC):
    """Where KPI measurements come from. Subclasses set ``type_name`` and ``options_model``.

    ``kpis`` are the configured KPIs: a source may read values from them (``inline``) or
    use their ids; most ignore them."""

    type_name: ClassVar[str]
    options_model: ClassVar[type[Options]] = Options

    def __init__(self, options: Options, base_dir: Path, kpis: Sequence[KPI] = ()):
        self.options = options
        self.base_dir = base_dir
        self.kpis = tuple(kpis)

    def describe(self) -> str:
        """How messages name this source: its type and what it reads, never a credential."""
        return self.type_name

    @abstractmethod
    def measurements(self) -> list[Measurement]:
        """Return every measurement this source holds; the store keeps the history."""


class Sandbox(ABC):
    """A stand-in for a tracker, seeded from a workspace, for demos and tests."""

    type_name: ClassVar[str]
    # Variables a connector needs to reach the sandbox (its token), set by ``start``; the
    # demo exports them. Names are sandbox-only (TETHER_SANDBOX_*), never a real token's.
    env: dict[str, str]

    @abstractmethod
    def start(self, seed: Path, workdir: Path) -> dict:
        """Serve ``seed`` (a folder), or the state a previous run saved in ``workdir``; return
        source options that point a connector at it (url, scope, token_env)."""

    def stop(self) -> None:  # noqa: B027 - optional: most sandboxes hold nothing
        """Release what ``start`` took (servers, threads); the default holds nothing."""

    def comments(self) -> dict[str, list[str]]:
        """Every item's comments as plain text, by key, oldest first: what a person browsing
        the tracker reads (the crash test counts Tether's comments with it)."""
        raise NotImplementedError(f"the {self.type_name} sandbox cannot list its comments")

    # -- webhooks, for `tether demo --serve` (optional: a sandbox without them is polled) --

    def deliver(self) -> list[Any]:
        """Post the webhook deliveries queued since the last call (people's edits and
        Tether's writes) to the webhooks made on this sandbox, signed as the tracker signs
        them; returns them with the answers. The default sends none."""
        return []

    def hook_by_hand(self, url: str, remove: bool = False) -> None:
        """Make (or ``remove``) a webhook to ``url`` as the tracker's administrator would in
        its settings, for trackers whose webhooks Tether cannot make through their API."""
        raise NotImplementedError(f"the {self.type_name} sandbox takes no webhook by hand")

    def close_as_person(self, key: str) -> None:
        """A person (not Tether's account) closes item ``key``; its webhooks hear of it."""
        raise NotImplementedError(f"the {self.type_name} sandbox cannot act as a person")


@dataclass(frozen=True)
class InitOption:
    """One option a connector adds to `tether init`: ``flag`` VALUE, repeatable or not."""

    flag: str  # "--jira-project"; its value reaches ``Starter.source`` as "jira_project"
    metavar: str
    help: str
    multiple: bool = False

    @property
    def key(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class InitSource:
    """A connector's entry in a starter tether.yaml: one ``sources:`` list item (indented two
    spaces, comments welcome; secrets only as ``token_env`` or ``${VAR}``), the
    environment variables a user must export before the first run, and how a KPI owner's
    handle on this tracker is written in kpis.yaml (``"github: <login>"``), if it has one."""

    yaml: str
    environment: tuple[str, ...] = ()
    owner_handle: str = ""


class InitError(ValueError):
    """A bad `tether init` value: ``flag`` names the option, the message what to write."""

    def __init__(self, flag: str, message: str):
        super().__init__(message)
        self.flag = flag


class Starter(ABC):
    """A connector's part of `tether init`: its options, and its source for their values."""

    type_name: ClassVar[str]
    options: ClassVar[tuple[InitOption, ...]]

    @abstractmethod
    def source(self, values: Mapping[str, Any]) -> InitSource | None:
        """The source entry for ``values`` (by ``InitOption.key``; a repeatable option gives a
        tuple), or None when none of this connector's options were given. Raises InitError."""
