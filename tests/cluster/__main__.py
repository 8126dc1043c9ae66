"""Start the test cluster by hand for development: ``python -m tests.cluster [--rbac]``.

Prints the kubeconfig path and an ``export KUBECONFIG=...`` line, then runs until Ctrl-C (or
SIGTERM) and stops etcd and kube-apiserver by PID.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tests.cluster import cluster as cluster_mod


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    parser.add_argument("--rbac", action="store_true", help="--authorization-mode RBAC")
    parser.add_argument("--workdir", type=Path, help="default: a new directory under /tmp")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    try:
        cluster = cluster_mod.start_cluster(rbac=args.rbac, workdir=args.workdir)
    except cluster_mod.ClusterError as e:
        print(f"could not start the test cluster: {e}", file=sys.stderr)
        return 1
    try:
        rss = ", ".join(f"{k} {v:.0f} MiB" for k, v in cluster.rss_mib().items())
        print(f"server      {cluster.server}  ({'RBAC' if cluster.rbac else 'AlwaysAllow'})")
        print(f"started in  {cluster.startup_seconds:.1f} s; RSS {rss}")
        print(f"workdir     {cluster.workdir}  (etcd.log, kube-apiserver.log)")
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
        cluster.stop()
        print("stopped.", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
