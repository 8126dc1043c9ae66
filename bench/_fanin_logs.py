"""Replica logs for ``bench/trigger_fanin.py --logs``.

- ``Printer`` (the orchestrator's side): a kubelet log endpoint that kube-apiserver proxies pod
  logs to (``tests/kubelet``'s ``LogServer`` and its Node), and a writer that prints a numbered
  line, ``pod <namespace>/<name> line <i>``, in every running replica every ``every`` seconds
  (one batch per tick, so 3,000 followers wake once per tick, not once per line).
- ``CountingLog`` (the trigger process's side): stands in for a trigger's logger and counts the
  replica lines it is given, by pod; the orchestrator compares them with what was printed: a line
  missing is lost, a line twice is repeated.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import threading
from typing import Any

NODE = "fanin-node"
CONTAINER = "tensorflow"
LINE = re.compile(r"pod (\S+) line (\d+)")


class Printer:
    """Every running replica prints a numbered line every ``every`` seconds."""

    def __init__(self, api: Any, every: float) -> None:
        from tests.kubelet.logserver import LogServer

        self.every = every
        self.server = LogServer(api, node_name=NODE).start()
        self.store = self.server.store
        self._lines: dict[tuple[str, str, str], int] = {}
        """Running containers and how many lines each printed."""
        self.printed: dict[str, int] = {}
        """``namespace/pod`` -> lines printed, once its container ended."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="printer", daemon=True)
        self._thread.start()

    def add(self, namespace: str, pod: str, uid: str) -> None:
        key = (namespace, pod, CONTAINER)
        self.store.start(key, uid, restart=False)
        with self._lock:
            self._lines[key] = 0

    def end(self, namespace: str, pod: str) -> None:
        """The container ends: its log stream ends once every line is sent."""
        key = (namespace, pod, CONTAINER)
        with self._lock:
            self.printed[f"{namespace}/{pod}"] = self._lines.pop(key)
            self.store.terminate(key)

    def _run(self) -> None:
        from tests.kubelet.logstore import Line, now

        while not self._stop.wait(self.every):
            stamp = now()
            with self._lock, self.store._cond:  # one notify for the whole tick (a bench shortcut)
                for key, index in self._lines.items():
                    run = self.store._current.get(key)
                    if run is None or run.terminated:
                        continue
                    text = f"pod {key[0]}/{key[1]} line {index}\n".encode()
                    run.lines.append(Line(time=stamp, text=text))
                    self._lines[key] = index + 1
                self.store._cond.notify_all()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.stop()


class CountingLog:
    """A trigger's logger for the bench: replica lines are counted by pod (not printed);
    everything else goes to the standard logger."""

    def __init__(self, seen: dict[str, list[int]]) -> None:
        self.seen = seen
        self._log = logging.getLogger("fanin.trigger")

    def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        text = message % args if args else message
        found = LINE.search(text)
        if found:
            self.seen[found[1]].append(int(found[2]))
        else:
            self._log.info(text)

    def warning(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._log.warning(message % args if args else message)

    def error(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._log.error(message % args if args else message)

    def debug(self, message: str, *args: Any, **kwargs: Any) -> None:
        pass

    exception = error


def new_seen() -> dict[str, list[int]]:
    return collections.defaultdict(list)


def tally(printed: dict[str, int], seen: dict[str, list[int]]) -> dict[str, int]:
    """Lines printed, shown, lost (printed, never shown) and repeated (shown more than once)."""
    lost = repeated = shown = 0
    missing: dict[str, list[int]] = {}
    for pod, count in printed.items():
        indices = seen.get(pod, [])
        shown += len(indices)
        distinct = set(indices)
        gone = [i for i in range(count) if i not in distinct]
        if gone:
            missing[pod] = gone
        lost += len(gone)
        repeated += len(indices) - len(distinct)
    if missing and os.environ.get("FANIN_DEBUG"):
        print("lost lines (pod: indices of printed count):", flush=True)
        for pod, gone in sorted(missing.items())[:20]:
            print(f"  {pod}: {gone} of {printed[pod]}", flush=True)
    return {"lines_printed": sum(printed.values()), "lines_shown": shown,
            "lines_lost": lost, "lines_repeated": repeated}  # fmt: skip


def open_fds() -> int:
    import os

    return len(os.listdir("/proc/self/fd"))


def sample_fds(peak: list[int], stop: threading.Event) -> None:
    """The process's open file descriptors, peak, sampled every second (in a thread)."""
    while not stop.wait(1.0):
        peak[0] = max(peak[0], open_fds())
