"""A synchronous Task SDK call (task states, XComs) made from a trigger, off its loop.

The call goes through the triggerer's comms to its supervisor. Airflow 3.2+ accept it from any
thread. Airflow 3.1 bridges it with asgiref's ``async_to_sync``, which finds the triggerer's
loop only from a thread asgiref's ``sync_to_async`` started (from any other thread it would open
a second loop on the same pipe). So every call is made in such a thread, on every minor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)`` in a thread of its own; the trigger's loop goes on."""
    from asgiref.sync import sync_to_async

    return await sync_to_async(function, thread_sensitive=False)(*args, **kwargs)
