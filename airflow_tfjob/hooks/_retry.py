"""When and how long to retry an API call; shared by the sync and async hooks.

Retry what can succeed later: 429 and 5xx (waiting as long as ``Retry-After`` asks, within reason)
and connection errors. Never retry another 4xx: the same request would fail the same way. Nor a
TLS failure about certificates (an untrusted or mismatched server certificate, our client
certificate refused): a retry meets the same certificate; a TLS connection merely cut is retried.
Retries wrap single calls only, never generators (a decorator on a generator retries nothing but
its creation).
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Iterator
from typing import Any

from tenacity import RetryCallState

MAX_ATTEMPTS = 8
MAX_WAIT_SECONDS = 30.0
BASE_WAIT_SECONDS = 0.2


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a client ``ApiException`` (either client), else None."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) and hasattr(exc, "reason") else None


def is_connection_error(exc: BaseException) -> bool:
    """Errors of the transport (either client), not answers of the server."""
    if isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError)):
        return True
    module = type(exc).__module__
    return module.startswith(("urllib3", "aiohttp")) or (status_of(exc) == 0)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: chained exceptions, urllib3's ``reason``, aiohttp's
    ``os_error``/``certificate_error``, exceptions among the arguments."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo.extend((item.__cause__, item.__context__, *item.args))
        todo.extend(
            getattr(item, attr, None) for attr in ("reason", "os_error", "certificate_error")
        )


_CERTIFICATE_REASONS = ("CERTIFICATE", "UNKNOWN_CA")
"""OpenSSL reasons of a handshake that failed over a certificate (``SSLV3_ALERT_BAD_CERTIFICATE``,
``TLSV13_ALERT_CERTIFICATE_REQUIRED``, ``TLSV1_ALERT_UNKNOWN_CA``): ours was refused."""


def certificate_error(exc: BaseException) -> BaseException | None:
    """The TLS certificate failure inside ``exc`` (either client), else None: the server's
    certificate not trusted or not for this host, or ours refused by the server."""
    found = []
    for item in _causes(exc):
        reason = str(getattr(item, "reason", "") or "")
        if isinstance(item, ssl.SSLCertVerificationError) or (
            isinstance(item, ssl.SSLError) and any(r in reason for r in _CERTIFICATE_REASONS)
        ):
            found.append(item)
    # ssl's own error (with its verify_message) rather than a client's wrapper of it
    return next((e for e in found if getattr(e, "verify_message", None)), None) or (
        found[0] if found else None
    )


def is_retryable(exc: BaseException) -> bool:
    """429, 5xx and transport errors; cancellation and certificate failures never."""
    if isinstance(exc, asyncio.CancelledError) or certificate_error(exc) is not None:
        return False
    status = status_of(exc)
    if status is not None and status != 0:
        return status == 429 or status >= 500
    return is_connection_error(exc)


def retry_after(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (``Retry-After``), capped."""
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return min(float(value), MAX_WAIT_SECONDS) if value is not None else None
    except (TypeError, ValueError):
        return None


def wait_seconds(state: RetryCallState) -> float:
    """Retry-After when given, else exponential backoff with full jitter."""
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    asked = retry_after(exc)
    if asked is not None:
        return asked
    ceiling = min(MAX_WAIT_SECONDS, BASE_WAIT_SECONDS * 2 ** (state.attempt_number - 1))
    return random.uniform(0, ceiling)


def retry_kwargs(max_attempts: int = MAX_ATTEMPTS, until: float | None = None) -> dict[str, Any]:
    """Arguments for ``tenacity.Retrying`` / ``AsyncRetrying``: ``max_attempts`` tries, and
    none whose wait would end past ``until`` (epoch seconds), when given."""
    from tenacity import retry_if_exception, stop_after_attempt, stop_before_delay

    stop: Any = stop_after_attempt(max_attempts)
    if until is not None:  # a caller's own deadline (a sensor's timeout) is not overrun
        stop = stop | stop_before_delay(max(0.0, until - time.time()))
    return {
        "retry": retry_if_exception(is_retryable),
        "wait": wait_seconds,
        "stop": stop,
        "reraise": True,
    }
