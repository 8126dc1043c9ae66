"""A scripted replica for the local backend's tests: it records its PID and does as it is told.

``ACTOR_PLAN`` maps a replica name (``worker-1``, or ``*``) to a list of steps, or to a mapping
from attempt number (``1``, ``2``, ... or ``*``) to steps; attempts are counted from the PIDs
recorded so far, across restarts and tries. Every process records itself in ``ACTOR_PIDS`` as
``<replica>.<attempt>.<pid>`` (a grandchild as ``<replica>.<attempt>.child.<pid>``). Steps:

- ``print TEXT``, ``sleep SECONDS`` (``inf``: forever), ``exit CODE``
- ``output TEXT``: write TEXT to the termination log (``--termination PATH``)
- ``env``: write the environment, working directory and argv as JSON to the termination log
- ``ignore-term``: ignore SIGTERM from now on
- ``listen``: listen on this replica's ``TF_CONFIG`` port
- ``steal REPLICA``: listen on another replica's port (a lost bind race, for real)
- ``bind``: bind this replica's port, printing Python's error and exiting 1 when it is taken
- ``child``: start a grandchild in a session of its own that sleeps for an hour
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SOCKETS = []


def role():
    task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task") or {}
    return f"{task.get('type', 'worker')}-{task.get('index', 0)}"


def attempt(name, pids):
    """1 + the runs of this replica recorded so far (in this test, across tries and restarts)."""
    return 1 + sum(
        1 for p in pids.iterdir() if p.name.split(".")[0] == name and "child" not in p.name
    )


def port_of(replica):
    config = json.loads(os.environ["TF_CONFIG"])
    kind, index = replica.rsplit("-", 1)
    return int(config["cluster"][kind][int(index)].rsplit(":", 1)[1])


def listen(port):
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen()
    SOCKETS.append(sock)


def termination(text):
    path = sys.argv[sys.argv.index("--termination") + 1]
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)


def main():
    name, pids = role(), Path(os.environ["ACTOR_PIDS"])
    number = attempt(name, pids)
    (pids / f"{name}.{number}.{os.getpid()}").touch()
    plan = json.loads(os.environ.get("ACTOR_PLAN") or "{}")
    steps = plan.get(name, plan.get("*", []))
    if isinstance(steps, dict):
        steps = steps.get(str(number), steps.get("*", []))
    for step in steps:
        verb, _, arg = step.partition(" ")
        if verb == "print":
            print(arg, flush=True)
        elif verb == "sleep":
            time.sleep(3600 * 24 if arg == "inf" else float(arg))
        elif verb == "exit":
            sys.exit(int(arg))
        elif verb == "output":
            termination(arg)
        elif verb == "env":
            termination(json.dumps({"env": dict(os.environ), "cwd": os.getcwd(), "argv": sys.argv}))
        elif verb == "ignore-term":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        elif verb == "listen":
            listen(port_of(name))
        elif verb == "steal":
            listen(port_of(arg))
        elif verb == "bind":
            try:
                listen(port_of(name))
            except OSError as exc:
                print(f"OSError: {exc}", flush=True)
                sys.exit(1)
        elif verb == "child":
            child = subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(3600)"], start_new_session=True
            )
            (pids / f"{name}.{number}.child.{child.pid}").touch()
        else:
            raise SystemExit(f"unknown step {step!r}")


if __name__ == "__main__":
    main()
