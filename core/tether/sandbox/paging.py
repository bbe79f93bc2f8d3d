"""Page-size parsing shared by sandboxes: clamp like the service, reject what it rejects."""

from __future__ import annotations


def page_size(raw: str | None, default: int, cap: int) -> int:
    """The page size a service would use for ``raw``: default when absent, at most ``cap``.

    Raises ValueError for values the service rejects (not a number, below 1)."""
    if raw in (None, ""):
        return default
    size = int(raw)
    if size < 1:
        raise ValueError(f"page size must be at least 1, not {size}")
    return min(size, cap)
