"""Webhook signatures are checked as the trackers compute them, in constant time."""

from __future__ import annotations

from tether.sdk import header, signature, signed_by

# GitHub's documented test vector ("Validating webhook deliveries").
SECRET, BODY = "It's a Secret to Everybody", b"Hello, World!"
DIGEST = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_the_documented_vector_signs_and_verifies() -> None:
    assert signature(SECRET, BODY) == DIGEST
    assert signed_by(SECRET, BODY, f"sha256={DIGEST}")  # GitHub and Jira: with the prefix
    assert signed_by(SECRET, BODY, DIGEST.upper())  # Asana: bare hex


def test_a_wrong_missing_or_tampered_signature_is_refused() -> None:
    assert not signed_by(SECRET, BODY + b" ", f"sha256={DIGEST}")
    assert not signed_by("another secret", BODY, DIGEST)
    assert not signed_by(SECRET, BODY, None) and not signed_by(SECRET, BODY, "")
    assert not signed_by("", BODY, signature("", BODY))  # no secret configured: nothing passes


def test_headers_are_found_whatever_their_case() -> None:
    headers = {"X-Hub-Signature-256": "sha256=ab", "x-github-delivery": "d1"}
    assert header(headers, "x-hub-signature-256") == "sha256=ab"
    assert header(headers, "X-GitHub-Delivery") == "d1" and header(headers, "X-Nope") is None
