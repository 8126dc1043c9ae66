"""When and how long to retry an API call; shared by the sync and async hooks.

Retry what can succeed later: 429 and 5xx (waiting as long as ``Retry-After`` asks, within reason)
and connection errors. Never retry another 4xx: the same request would fail the same way.
Retries wrap single calls only, never generators (a decorator on a generator retries nothing but
its creation).
"""

from __future__ import annotations

import asyncio
import random
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


def is_retryable(exc: BaseException) -> bool:
    """429, 5xx and transport errors; cancellation never."""
    if isinstance(exc, asyncio.CancelledError):
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


def retry_kwargs(max_attempts: int = MAX_ATTEMPTS) -> dict[str, Any]:
    """Arguments for ``tenacity.Retrying`` / ``AsyncRetrying``."""
    from tenacity import retry_if_exception, stop_after_attempt

    return {
        "retry": retry_if_exception(is_retryable),
        "wait": wait_seconds,
        "stop": stop_after_attempt(max_attempts),
        "reraise": True,
    }
