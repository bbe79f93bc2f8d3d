"""The plugin SDK: the one module a Tether plugin imports, and the names Tether keeps stable.

A connector plugin subclasses :class:`Connector` (with its :class:`Options` and
:class:`Capabilities`), returns :class:`Task` objects from its pulls, reads and writes
Tether's annotations as :class:`WriteOp` / :class:`OpResult`, raises :class:`SourceError`
or :class:`InvalidInput` with a located message, retries through :func:`with_retries`,
keeps its cursor in a :class:`Watermark`, sleeps on an injected :class:`Clock`, finds
Tether's comment by :data:`MARKER` (and stores it with :func:`at_mentions` and
:func:`stored_body` where the tracker keeps Markdown), and builds its `tether doctor` lines from the checks
below, and reads its tracker's webhook deliveries in ``Connector.receive`` (checking their
signature with :func:`signed_by`). Hooks are implemented with :data:`hookimpl`; their contracts are in
``tether.hookspecs``. A sandbox (the loopback fake tracker) also builds on
``tether.sandbox``; a conformance driver on ``tether.testing``.

Anything else under ``tether`` is internal and may change between releases.
"""

from tether.clock import Clock, FakeClock
from tether.codec import parse_datetime, task_from_dict, task_to_dict
from tether.connector import (
    Capabilities,
    Check,
    Connector,
    InitError,
    InitOption,
    InitSource,
    KpiSource,
    Options,
    PullResult,
    Sandbox,
    Starter,
    variable_name,
)
from tether.doctor.checks import (
    AUTH,
    QUIET,
    RATE,
    READ,
    TOKEN,
    WRITE,
    rate_headroom,
    skipped,
    token_check,
    words,
)
from tether.errors import InvalidInput, Problem, SourceError, TetherError
from tether.hookspecs import hookimpl
from tether.model import (
    KPI,
    CurrentAnnotation,
    Finding,
    Link,
    Mapping,
    Measurement,
    OpKind,
    OpResult,
    Task,
    WriteOp,
)
from tether.pipeline.markdown import at_mentions, stored_body, stored_digest, with_marker
from tether.pipeline.render import MARKER, MENTION, digest, mention, neutralise
from tether.ratelimit import Budget
from tether.retry import RetryPolicy, with_retries
from tether.watermark import PullDate, Watermark
from tether.webhook import (
    Delivery,
    Hook,
    HooksByHand,
    HookSecrets,
    Refused,
    Reply,
    check_signed,
    header,
    signature,
    signed_by,
)

__all__ = [
    # hooks
    "hookimpl",
    # what a connector implements
    "Capabilities", "Check", "Connector", "KpiSource", "Options", "PullResult", "Sandbox",
    "InitError", "InitOption", "InitSource", "Starter", "variable_name",
    # a tracker's published rate limit per token (``Connector.published_budget``)
    "Budget",
    # the domain model
    "KPI", "CurrentAnnotation", "Finding", "Link", "Mapping", "Measurement", "OpKind",
    "OpResult", "Task", "WriteOp",
    # errors
    "InvalidInput", "Problem", "SourceError", "TetherError",
    # webhooks
    "Delivery", "Hook", "HooksByHand", "HookSecrets", "Refused", "Reply", "check_signed",
    "header", "signature", "signed_by",
    # retry, cursors, time
    "Clock", "FakeClock", "PullDate", "RetryPolicy", "Watermark", "with_retries",
    # task values
    "parse_datetime", "task_from_dict", "task_to_dict",
    # Tether's comment: its marker, mentions, quoting, storing it as Markdown
    "MARKER", "MENTION", "digest", "mention", "neutralise", "at_mentions", "stored_body",
    "stored_digest", "with_marker",
    # doctor checks
    "AUTH", "QUIET", "RATE", "READ", "TOKEN", "WRITE", "rate_headroom", "skipped",
    "token_check", "words",
]
