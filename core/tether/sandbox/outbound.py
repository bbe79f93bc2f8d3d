"""What a sandbox sends out: webhook deliveries, posted as a tracker's sender posts them."""

from __future__ import annotations

import requests

TIMEOUT = 10.0  # seconds a receiver gets to answer (GitHub's and Asana's limit)


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST ``body`` to ``url`` without following redirects: the answer's status and, when
    it is not a 2xx, its text; status 0 and the error when the receiver cannot be reached."""
    try:
        answer = requests.post(url, data=body, headers=headers, timeout=TIMEOUT,
                               allow_redirects=False)
    except requests.RequestException as exc:
        return 0, f"{type(exc).__name__}: {exc}"
    return answer.status_code, "" if answer.ok else answer.text[:500]
