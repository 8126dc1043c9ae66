"""A throwaway PostgreSQL cluster for the live tier's Airflow metadata DB.

Debian's server binaries (``/usr/lib/postgresql/<version>/bin``, the highest version found, else
``initdb`` on PATH) build a cluster in a fresh directory under the system temp dir, serving TCP on
a free ``127.0.0.1`` port with its unix socket in that directory. ``initdb`` refuses to run as
root, so as root every server command runs as the ``postgres`` OS user (``runuser``) on a
directory chowned to it; as anyone else they run directly. Durability is switched off (``fsync``,
``synchronous_commit``, ``full_page_writes``): nothing here has to survive a crash.

:meth:`Postgres.stop` (``pg_ctl stop -m fast``, then SIGKILL by the postmaster's PID) is
idempotent and also runs at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from airflow_tfjob.backends.local.ports import free_ports

_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
}
_ATTEMPTS = 3  # a probed free port can be taken before the server binds it


class PostgresError(RuntimeError):
    """The cluster could not be created or started; the message says which step and why."""


def bindir() -> Path:
    """The directory of ``initdb``/``pg_ctl``/``psql``: Debian's highest version, else PATH."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)],
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise PostgresError("no initdb: install Debian's postgresql package (bash .ci/setup)")
    return Path(initdb).resolve().parent


@dataclass
class Postgres:
    """A running cluster with database and role ``airflow``; :meth:`stop` it."""

    workdir: Path
    """Data directory ``data/``, the unix socket and ``postgres.log``; removed by :meth:`stop`."""
    port: int
    password: str = field(repr=False)
    """The ``airflow`` role's password."""
    bindir: Path
    startup_seconds: float = 0.0
    """From :meth:`start` to the ``airflow`` database existing."""

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``airflow`` database (contains the password: do not print)."""
        return f"postgresql+psycopg2://airflow:{self.password}@127.0.0.1:{self.port}/airflow"

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.workdir / "postgres.log"

    @classmethod
    def start(cls) -> Postgres:
        """initdb, start and create the ``airflow`` role and database."""
        started = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix="airflow-tfjob-pg-"))
        if os.geteuid() == 0:
            try:
                shutil.chown(workdir, "postgres", "postgres")
            except LookupError:
                shutil.rmtree(workdir)
                raise PostgresError("no OS user postgres to run the server as root") from None
        server = cls(workdir, 0, secrets.token_hex(16), bindir())
        atexit.register(server.stop)
        try:
            server._run("initdb", "-D", "data", "-U", "postgres", "-E", "UTF8", "--locale=C",
                        "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")  # fmt: skip
            for _ in range(_ATTEMPTS):
                server.port = free_ports(1)[0]
                server._configure()
                if server._pg_ctl_start():
                    break
            else:
                raise PostgresError(f"postgres did not start:\n{server._log_tail()}")
            server._psql(f"CREATE ROLE airflow LOGIN PASSWORD '{server.password}'")
            server._psql("CREATE DATABASE airflow OWNER airflow")
        except BaseException:
            server.stop()
            raise
        server.startup_seconds = time.monotonic() - started
        return server

    def stop(self) -> None:
        """``pg_ctl stop -m fast``, SIGKILL the postmaster if still there, remove the directory.
        Idempotent."""
        if not self.workdir.exists():
            return
        pidfile = self.workdir / "data" / "postmaster.pid"
        if pidfile.exists():
            with contextlib.suppress(PostgresError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", "data", "stop", "-m", "fast", "-w", "-t", "20")
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
            for _ in range(50):  # its backends notice the postmaster's death and exit
                os.kill(pid, 0)
                time.sleep(0.1)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- helpers ---------------------------------------------------------------------------

    def _configure(self) -> None:
        settings = {
            **_SETTINGS,
            "port": str(self.port),
            "unix_socket_directories": f"'{self.workdir}'",
        }
        conf = self.workdir / "data" / "postgresql.auto.conf"
        conf.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        if os.geteuid() == 0:
            shutil.chown(conf, "postgres", "postgres")

    def _pg_ctl_start(self) -> bool:
        try:
            self._run("pg_ctl", "-D", "data", "-l", str(self.log), "-w", "-t", "60", "start")
        except PostgresError:
            if "could not bind" in self._log_tail() or "already in use" in self._log_tail():
                return False
            raise
        return True

    def _psql(self, sql: str) -> None:
        self._run("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.workdir),
                  "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-c", sql)  # fmt: skip

    def _run(self, program: str, *args: str) -> None:
        argv = [str(self.bindir / program), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(
            argv, cwd=self.workdir, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).replace(self.password, "***")
            raise PostgresError(f"{program} {args[:3]} failed ({done.returncode}):\n{output}")

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""
