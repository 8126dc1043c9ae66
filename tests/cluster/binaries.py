"""The test cluster's binaries and CRDs, as tests/cluster/build_kube.sh builds and caches them
(once per version, from their Go modules, under ``~/.cache/airflow-tfjob``).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.cluster.processes import ClusterError

BUILD_SCRIPT = Path(__file__).resolve().parent / "build_kube.sh"
TRAINER_CRD_KINDS = ("trainjobs", "trainingruntimes", "clustertrainingruntimes")
"""Trainer's CRDs: ``trainer.kubeflow.org_<kind>.yaml`` in its module and in the cache."""


@dataclass(frozen=True)
class Binaries:
    """The cached binaries of one build (:func:`ensure_built`)."""

    etcd: Path
    apiserver: Path
    controller_manager: Path
    operator: Path
    operator_crd: Path
    jobset: Path
    trainer: Path
    trainer_crds: tuple[Path, ...]
    """JobSet's CRD, then Trainer's three."""


def ensure_built() -> Binaries:
    """The cached binaries, built first where missing (build_kube.sh prints their folders);
    :class:`ClusterError` if that fails."""
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ClusterError(
            f"building the test cluster failed (exit {result.returncode}); "
            f"{BUILD_SCRIPT.name} said:\n{tail(result.stderr)}"
        )
    kube, operator, trainer = (Path(line) for line in result.stdout.strip().splitlines()[-3:])
    return Binaries(
        etcd=kube / "etcd",
        apiserver=kube / "kube-apiserver",
        controller_manager=kube / "kube-controller-manager",
        operator=operator / "training-operator",
        operator_crd=operator / "kubeflow.org_tfjobs.yaml",
        jobset=trainer / "jobset-controller",
        trainer=trainer / "trainer-controller-manager",
        trainer_crds=(
            trainer / "jobset.x-k8s.io_jobsets.yaml",
            *(trainer / f"trainer.kubeflow.org_{kind}.yaml" for kind in TRAINER_CRD_KINDS),
        ),
    )


def tail(text: str, lines: int = 40) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.splitlines()[-lines:])
