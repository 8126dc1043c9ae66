"""Start the test cluster by hand: ``python -m tests.cluster``.

etcd, kube-apiserver, kube-controller-manager, the training operator, JobSet and Trainer v2, and
the process kubelet, which runs every pod's real command as a local process. Prints the kubeconfig
path and an ``export KUBECONFIG=...`` line, then runs until Ctrl-C (or SIGTERM) and stops
everything by PID.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tests.cluster import cluster as cluster_mod
from tests.kubelet import kubelet as kubelet_mod


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    parser.add_argument("--workdir", type=Path, help="default: a new directory under /tmp")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    try:
        cluster = cluster_mod.start_cluster(workdir=args.workdir)
    except cluster_mod.ClusterError as e:
        print(f"could not start the test cluster: {e}", file=sys.stderr)
        return 1
    client = cluster.api_client()
    kubelet = kubelet_mod.Kubelet(
        client, workdir=cluster.workdir / "pods", real_by_default=True
    ).start()
    try:
        rss = ", ".join(f"{k} {v:.0f} MiB" for k, v in cluster.rss_mib().items())
        print(f"server      {cluster.server}  (Kubernetes {cluster.version}, RBAC)")
        print(f"started in  {cluster.startup_seconds:.1f} s; RSS {rss}")
        print(f"workdir     {cluster.workdir}  (the components' logs; pods/ for replicas)")
        print(f"kubelet     node {kubelet.node_name}: pods run their commands as processes")
        print(f"kubeconfig  {cluster.kubeconfig}")
        print(f"restricted  {cluster.kubeconfig_for('restricted')}")
        print(f"export KUBECONFIG={cluster.kubeconfig}", flush=True)
        print("Ctrl-C to stop.", file=sys.stderr, flush=True)
        while cluster.alive():
            time.sleep(1.0)
        print("a cluster process exited; see the logs in the workdir", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        kubelet.stop()
        client.close()
        cluster.stop()
        print("stopped.", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
