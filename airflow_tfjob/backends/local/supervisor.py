"""``LocalJob``: run every replica, apply the training operator's rules, leave nothing behind.

One thread (the caller's) starts every process and polls them; output is pumped by a thread per
process. The job ends when the success policy is met, a replica fails for good, the backoff limit
or ``activeDeadlineSeconds`` is reached — or, raising, when the task's deadline passes, a replica
never comes up, or the task is killed. Whatever ended it, every process group still alive is sent
SIGTERM, then SIGKILL after the grace period, and anything carrying the run's marker is killed.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from airflow_tfjob import errors
from airflow_tfjob.backends.local import plan, ports, reaper, rules
from airflow_tfjob.backends.local.process import ReplicaProcess, stop_all
from airflow_tfjob.backends.local.request import LocalRequest
from airflow_tfjob.model import tfconfig
from airflow_tfjob.model.kube import KubeObject
from airflow_tfjob.rules import report, status
from airflow_tfjob.rules.status import JobState, ReplicaOutcome

TICK = 0.1
"""Seconds between polls of the replicas."""
READY_CHECK = 0.5
"""Seconds between checks that every replica came up."""
BIND_RACE_ATTEMPTS = 3
"""Starts of the whole job on fresh ports before a lost bind race is a failure."""
MAX_MESSAGE_BYTES = 4096
RUNNING = (
    "Running TFJob %s on the local backend: %d replicas as local processes in %s "
    "(images are ignored: %s); TensorFlow threads per replica: %d intra-op, %d inter-op"
)
LEFT_BEHIND = "Killed %d processes the replicas left behind: %s"
LOGS_KEPT = "Replica logs of TFJob %s are kept in %s"
"""What the task log says (formats, so that docs/ quoting them are checked against them)."""


@dataclass
class Slot:
    """One replica and its current process."""

    replica: plan.Replica
    port: int = 0
    proc: ReplicaProcess | None = None
    final: str = ""
    """``succeeded`` or ``failed`` once the replica is done for good."""
    restarts: int = 0
    up: bool = False


class LocalJob:
    """One local run of a TFJob manifest."""

    def __init__(self, request: LocalRequest) -> None:
        self.request, self.log = request, request.log
        meta, spec = request.manifest["metadata"], request.manifest["spec"]
        self.name, self.namespace = str(meta["name"]), str(meta.get("namespace") or "default")
        self.where = f"{self.namespace}/{self.name}"
        self.uid = str(uuid.uuid4())
        self.counts = status.replica_counts(request.manifest)
        self.slots = [Slot(r) for r in plan.replicas(request.manifest, self.uid)]
        run_policy = spec.get("runPolicy") or {}
        self.backoff_limit = run_policy.get("backoffLimit")
        self.active_deadline = run_policy.get("activeDeadlineSeconds")
        self.clean_pod_policy = run_policy.get("cleanPodPolicy") or "None"
        self.success_policy = spec.get("successPolicy")
        self.owner = hashlib.sha256(repr(sorted(request.identity.items())).encode()).hexdigest()[
            :16
        ]
        self.marker = f"{self.owner}/{self.uid}"
        self.directory = request.run_root / self.namespace / self.name / self.uid[:8]
        self.status = rules.JobStatus(self.where, self.counts)
        self.output_replica = status.output_replica(self.counts)
        self.output: ReplicaOutcome | None = None
        self.failures: list[ReplicaOutcome] = []
        self.restarts = 0
        self.threads = request.threads or max(1, (os.cpu_count() or 1) // len(self.slots))
        self._started = time.monotonic()
        self._attempts = 0
        self._ready_checked = 0.0
        self._stop_reason = ""
        self._wake = threading.Event()

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> tuple[KubeObject, JobState]:
        """Run to the end; the TFJob-shaped object and its state. Raises ``TFJobTimeout`` when
        the task's deadline passes and ``TFJobError`` when a replica never comes up or the task
        is killed; every process is gone when it returns or raises."""
        left = reaper.kill(f"{self.owner}/")
        if left:
            self.log.warning("Killed %d processes left by an earlier try: %s", len(left), left)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.request.on_submitted(self.object())
        self._announce()
        try:
            self._start_all()
            while not self.status.finished:
                self._check_limits()
                for slot in self.slots:
                    code = None if slot.final or slot.proc is None else slot.proc.poll()
                    if code is not None:
                        self._exited(slot, code)
                    if self.status.finished:
                        break
                self._recount()
                self._wake.wait(TICK)
        finally:
            self._stop_everything()
        return self.object(), status.job_state(self.object())

    def kill(self, reason: str) -> None:
        """Stop the run from any thread or a signal handler: the loop raises and cleans up."""
        self._stop_reason = reason
        for slot in self.slots:
            if slot.proc is not None:
                slot.proc.signal(signal.SIGTERM)
        self._wake.set()

    def tail(self, replica: str) -> list[str]:
        """The last output lines of ``replica``'s latest process."""
        for slot in self.slots:
            if slot.replica.name == replica and slot.proc is not None:
                return list(slot.proc.tail)
        return []

    def object(self) -> KubeObject:
        """The run as the TFJob object the training operator would show."""
        return self.status.job(self.request.manifest, self.namespace, self.uid)

    # -- starting ---------------------------------------------------------------------------

    def _announce(self) -> None:
        images = sorted(
            {
                str(c.get("image"))
                for group in self.request.manifest["spec"]["tfReplicaSpecs"].values()
                for c in ((group or {}).get("template") or {}).get("spec", {}).get("containers")
                or []
                if c.get("image")
            }
        )
        self.log.info(
            RUNNING,
            self.where,
            len(self.slots),
            self.directory,
            ", ".join(images) or "none",
            self.threads,
            plan.interop_threads(self.threads),
        )

    def _start_all(self) -> None:
        self._attempts += 1
        for slot, port in zip(self.slots, ports.free_ports(len(self.slots)), strict=True):
            slot.port, slot.up, slot.final, slot.restarts = port, False, "", 0
        self._started = time.monotonic()
        self._ready_checked = 0.0
        for slot in self.slots:
            self._spawn(slot)
        self._recount()

    def _spawn(self, slot: Slot) -> None:
        replica = slot.replica
        termination = self._termination_file(replica)
        termination.unlink(missing_ok=True)
        argv = [w.replace(replica.termination_path, str(termination)) for w in replica.command]
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        emit = self._emit if self.request.get_logs else None
        try:
            slot.proc = ReplicaProcess(
                replica.name,
                argv,
                env=self._environment(slot, str(termination)),
                cwd=self.directory / replica.name,
                log_file=self.directory / f"{replica.name}.log",
                emit=emit,
            )
        except OSError as exc:
            message = f"could not start {replica.name} of TFJob {self.where}: {exc}"
            raise errors.TFJobError(message) from exc

    def _emit(self, replica: str, line: str) -> None:
        self.log.info("[%s] %s", replica, line)

    def _termination_file(self, replica: plan.Replica) -> Path:
        return self.directory / f"{replica.name}.termination-log"

    def _environment(self, slot: Slot, termination: str) -> dict[str, str]:
        ports_of = {(s.replica.rtype, s.replica.index): s.port for s in self.slots}
        env = plan.environment(
            slot.replica, self.counts, ports_of, threads=self.threads, termination=termination
        )
        env[reaper.MARKER_ENV] = self.marker
        return env

    # -- following --------------------------------------------------------------------------

    def _check_limits(self) -> None:
        if self._stop_reason:
            raise errors.TFJobError(f"TFJob {self.where} was stopped: {self._stop_reason}")
        if self.request.deadline is not None and time.time() >= self.request.deadline:
            phase = status.job_state(self.object()).phase
            ended = "its replicas were stopped"
            raise errors.TFJobTimeout(report.deadline_message(self.where, phase, ended=ended))
        elapsed = time.monotonic() - self._started
        if self.active_deadline is not None and elapsed >= self.active_deadline:
            self.status.fail(
                f"Job {self.name} has failed because it was active longer than specified "
                f"deadline ({self.active_deadline} s, activeDeadlineSeconds)"
            )
            return
        self._check_started(elapsed)

    def _check_started(self, elapsed: float) -> None:
        """Fail when a replica has not come up (TensorFlow's server listening on its
        ``TF_CONFIG`` port, or exited) within the start-up timeout: its peers would wait forever."""
        waiting = [s for s in self.slots if not s.up]
        if not waiting or time.monotonic() - self._ready_checked < READY_CHECK:
            return
        self._ready_checked = time.monotonic()
        listening = ports.listening() if tfconfig.is_distributed(self.counts) else None
        for slot in waiting:
            exited = slot.proc is None or slot.proc.poll() is not None
            unknowable = listening is None or slot.replica.rtype == "Evaluator"
            if unknowable or exited or slot.port in (listening or ()):
                slot.up = True
        late = [s for s in self.slots if not s.up]
        timeout = self.request.startup_timeout
        if late and timeout is not None and elapsed > timeout:
            described = "; ".join(
                f"{s.replica.name}: not listening on {ports.LOCALHOST}:{s.port}" for s in late
            )
            raise errors.TFJobError(
                f"replicas of TFJob {self.where} did not come up within {timeout:.0f} s "
                f"(startup_timeout_seconds), so their peers would wait forever; the job was "
                f"stopped. {described}"
            )

    def _exited(self, slot: Slot, code: int) -> None:
        if self._stop_reason:
            return  # killed on purpose: no restart, no verdict; the loop raises next
        replica = slot.replica
        outcome = self._outcome(slot, code)
        assert slot.proc is not None
        if (
            code != 0
            and slot.restarts == 0
            and ports.lost_bind_race(list(slot.proc.tail))
            and self._attempts < BIND_RACE_ATTEMPTS
        ):
            self.log.warning(
                "%s lost a race for port %d; starting every replica again on fresh ports",
                replica.name,
                slot.port,
            )
            self._stop_processes()
            self._start_all()
            return
        decision = rules.after_exit(replica.restart_policy, code)
        if decision in ("restart", "recreate"):
            self._restart(slot, outcome, counted=decision == "restart")
        elif decision == "succeeded":
            slot.final = "succeeded"
            if replica.name == self.output_replica and self.output is None:
                self.output = outcome
            done = [
                (s.replica.rtype, s.replica.index) for s in self.slots if s.final == "succeeded"
            ]
            if rules.succeeded(self.counts, done, self.success_policy):
                self.status.succeed()
        else:
            slot.final = "failed"
            self.failures.append(outcome)
            failed = sum(
                1 for s in self.slots if s.final == "failed" and s.replica.rtype == replica.rtype
            )
            self.status.fail(
                f"TFJob {self.where} has failed because {failed} {replica.rtype} replica(s) failed."
            )

    def _restart(self, slot: Slot, outcome: ReplicaOutcome, *, counted: bool) -> None:
        replica = slot.replica
        if counted:
            self.restarts += 1
            if rules.past_backoff_limit(self.backoff_limit, self.restarts):
                self.failures.append(outcome)
                self.status.fail(
                    f"Job {self.name} has failed because it has reached the specified backoff "
                    f"limit ({self.backoff_limit} restarts, backoffLimit)"
                )
                return
        self.log.warning(
            "%s exited with code %d; restarting it (restartPolicy %s%s)",
            replica.name,
            outcome.exit_code,
            replica.restart_policy,
            f", restart {self.restarts} counted against backoffLimit {self.backoff_limit}"
            if counted and self.backoff_limit is not None
            else "",
        )
        self.status.restarting(replica.rtype)
        assert slot.proc is not None
        slot.proc.signal(signal.SIGKILL)  # what the container left in its group goes with it
        slot.restarts += 1
        self._spawn(slot)

    def _outcome(self, slot: Slot, code: int) -> ReplicaOutcome:
        try:
            data = self._termination_file(slot.replica).read_bytes()[-MAX_MESSAGE_BYTES:]
        except OSError:
            data = b""
        return ReplicaOutcome(
            replica=slot.replica.name,
            pod=slot.replica.pod(self.name),
            terminated=True,
            exit_code=code,
            reason="Completed" if code == 0 else "Error",
            message=data.decode("utf-8", errors="replace"),
            finished_at=rules.stamp(datetime.datetime.now(datetime.UTC)),
            restarts=slot.restarts,
        )

    def _recount(self) -> None:
        master_active = False
        for rtype in self.counts:
            of_type = [s for s in self.slots if s.replica.rtype == rtype]
            active = sum(1 for s in of_type if not s.final and s.proc and s.proc.poll() is None)
            self.status.count(
                rtype,
                active=active,
                succeeded=sum(1 for s in of_type if s.final == "succeeded"),
                failed=sum(1 for s in of_type if s.final == "failed"),
            )
            has_chief = any(t in self.counts for t in rules.CHIEF_TYPES)
            if active and (rtype in rules.CHIEF_TYPES or (rtype == "Worker" and not has_chief)):
                master_active = True
        if master_active:
            self.status.running()

    # -- stopping ---------------------------------------------------------------------------

    def _stop_processes(self) -> list[str]:
        procs = [s.proc for s in self.slots if s.proc is not None]
        grace = {s.replica.name: s.replica.stop_grace for s in self.slots}

        def grace_of(proc: ReplicaProcess) -> float:
            own = grace.get(proc.replica)
            return float(own) if own is not None else self.request.stop_grace

        killed = stop_all(procs, grace_of)
        for proc in procs:
            proc.finish_output(2.0)
        return killed

    def _stop_everything(self) -> None:
        for slot in self.slots:  # exits the finished job did not wait for still count
            code = None if slot.final or slot.proc is None else slot.proc.poll()
            if code is not None:
                slot.final = "succeeded" if code == 0 else "failed"
        still = [s.replica.name for s in self.slots if s.proc and s.proc.poll() is None]
        if still:
            why = (
                f"cleanPodPolicy {self.clean_pod_policy}"
                if self.status.finished
                else "the run was interrupted"
            )
            self.log.info("Stopping %s, still running (%s)", ", ".join(still), why)
        killed = self._stop_processes()
        self._recount()
        if killed:
            self.log.warning(
                "%s ignored SIGTERM and were killed with SIGKILL after the grace period",
                ", ".join(killed),
            )
        left = reaper.kill(self.marker)
        if left:
            self.log.warning(LEFT_BEHIND, len(left), left)
        phase = status.job_state(self.object()).phase
        action = self.request.on_finish_action
        if action == "delete_tfjob" or (
            action == "delete_succeeded_tfjob" and phase == "Succeeded"
        ):
            for slot in self.slots:
                shutil.rmtree(self.directory / slot.replica.name, ignore_errors=True)
        self.log.info(LOGS_KEPT, self.where, self.directory)
