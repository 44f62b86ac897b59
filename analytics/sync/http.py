"""A small JSON-over-HTTPS client for the providers' Admin APIs, on the standard library.

Why not a client library: two GET endpoints per provider do not justify a dependency, and the
retry rules matter more than the transport. Rate limits (429) and server errors (5xx) are
retried with exponential backoff and jitter, waiting at least what ``Retry-After`` asks; a
dropped connection, a timeout or a truncated body is retried the same way. Anything else
(a refused key, a bad request) fails at once with the provider's own words, with the admin
key blanked out of them, since retrying cannot fix it.
"""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any


class SyncError(ValueError):
    """A sync that could not complete, in plain words (never holding the admin key)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: ``base * 2**attempt`` seconds (at most ``cap``),
    "equal jitter" (half fixed, half random) so many clients do not retry in step."""

    attempts: int = 6
    base: float = 1.0
    cap: float = 60.0
    max_wait: float = 300.0  # longest Retry-After honoured before giving up waiting longer

    def delay(self, attempt: int, retry_after: float | None, rng: Callable[[], float]) -> float:
        backoff = min(self.cap, self.base * 2 ** attempt)
        jittered = backoff / 2 + rng() * backoff / 2
        wait = max(jittered, retry_after) if retry_after is not None else jittered
        return min(wait, self.max_wait)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; None if absent/odd.

    >>> retry_after_seconds("7")
    7.0
    """
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


_RETRIABLE_STATUS = frozenset({408, 409, 425, 429}) | frozenset(range(500, 600))


class HttpClient:
    """GETs JSON from one API base URL with the given headers, retrying what is transient."""

    def __init__(self, base_url: str, headers: Mapping[str, str], *,
                 policy: RetryPolicy | None = None, timeout: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random) -> None:
        scheme = urllib.parse.urlsplit(base_url).scheme
        if scheme not in ("http", "https"):
            raise SyncError(f"The API address {base_url!r} is not an http(s) URL.")
        self.base_url = base_url.rstrip("/")
        self._headers = {"Accept": "application/json", "User-Agent": "burnrate-sync",
                         **headers}
        # header values and their last word ("Bearer <key>"): blanked out of any message
        words = {w for v in headers.values() for w in (v, v.split()[-1] if v.split() else v)}
        self._secrets = sorted((w for w in words if len(w) >= 16), key=len, reverse=True)
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.sleep = sleep
        self.rng = rng
        self.waits: list[float] = []  # every wait taken, for progress messages and tests

    def url(self, path: str, params: Sequence[tuple[str, str]] = ()) -> str:
        query = urllib.parse.urlencode(list(params))
        return f"{self.base_url}{path}" + (f"?{query}" if query else "")

    def get_json(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        """The decoded JSON answer of ``GET path?params``; raises ``SyncError``."""
        request = urllib.request.Request(self.url(path, params), headers=self._headers)
        last = ""
        for attempt in range(self.policy.attempts):
            retry_after = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                body = _read_quietly(exc)
                if exc.code not in _RETRIABLE_STATUS:
                    raise SyncError(self._refusal(path, exc.code, body)) from None
                retry_after = retry_after_seconds(exc.headers.get("Retry-After"))
                last = f"HTTP {exc.code}"
            except (OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}: the connection failed or the answer was cut short"
            except (UnicodeDecodeError, json.JSONDecodeError):
                last = "the answer was not complete JSON (cut short?)"
            if attempt + 1 < self.policy.attempts:
                wait = self.policy.delay(attempt, retry_after, self.rng)
                self.waits.append(wait)
                self.sleep(wait)
        raise SyncError(f"{self.base_url}{path} did not answer after {self.policy.attempts} "
                        f"attempts (last: {last}). Try again later.")

    def _refusal(self, path: str, status: int, body: bytes) -> str:
        detail = _api_message(body)
        if status in (401, 403):
            why = "refused the admin key (check that it is an Admin API key of this organisation)"
        elif status == 404:
            why = "does not know this endpoint (check the API address)"
        else:
            why = f"refused the request (HTTP {status})"
        text = f"{self.base_url}{path} {why}" + (f": {detail}" if detail else ".")
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _read_quietly(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read() or b""
    except (OSError, http.client.HTTPException):
        return b""


def _api_message(body: bytes) -> str:
    """The provider's error message (``{"error": {"message": ...}}``), shortened."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return str(message)[:200] if message else ""


__all__ = ["HttpClient", "RetryPolicy", "SyncError", "retry_after_seconds"]
