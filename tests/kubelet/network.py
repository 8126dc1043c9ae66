"""Pod networking for the process kubelet, as a cluster gives it.

Each pod gets a network namespace of its own with an address on a bridge of this kubelet
(``10.X.0.0/16``, X chosen so that no route of the machine covers it; nothing is routed off the
machine), so every replica can listen on port 2222 as in a cluster. The names the operator's
headless Services stand for resolve to the pod addresses as cluster DNS would: the operator names
each replica's Service after its pod and selects exactly that pod, so each pod's
``/etc/hosts`` (``/etc/netns/<netns>/hosts``, which ``ip netns exec`` mounts over ``/etc/hosts``
in the process's own mount namespace) lists every pod as ``<pod>.<ns>.svc.cluster.local``,
``<pod>.<ns>.svc``, ``<pod>.<ns>`` and, within its namespace, ``<pod>`` (the short forms the
resolver's search path allows; glibc applies the search path to DNS only, not to this file).

A pod with ``spec.hostname`` and ``spec.subdomain`` (a JobSet pod: hostname ``J-node-0-<i>`` from
the Job controller, subdomain ``J`` with JobSet's headless Service ``J`` over all its pods) is
named as cluster DNS names it instead: ``<hostname>.<subdomain>.<ns>.svc.cluster.local``,
``.<ns>.svc``, ``.<ns>`` and, within its namespace, ``<hostname>.<subdomain>`` (the TF_CONFIG
the provider writes uses that one). It does not get the ``<pod>`` names, which cluster DNS only
has for the training operator's per-pod Services: a TF_CONFIG that used them would pass here and
fail on a cluster. Each pod's own file also names the pod by its bare hostname, as the kubelet's
hosts file does.

A pod leaves every file when it ends (:meth:`PodNetwork.detach` once it is Succeeded or Failed,
as cluster DNS drops a finished pod's address), so the replacement of a failed pod of the same
hostname is the only one found. The files are rewritten in place when a pod comes or goes, and
glibc reads ``/etc/hosts`` at every lookup, so a replica finds a peer that started after it.

It needs root (``ip netns``, veth pairs, a bridge); :func:`available` says whether it can run.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
NETNS_DIR = Path("/etc/netns")
DOMAIN = "cluster.local"


def available() -> bool:
    """Whether this process may make network namespaces (root with ``ip``)."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


@dataclass(frozen=True)
class Attachment:
    """One pod's place on the network."""

    netns: str
    address: str


@dataclass(frozen=True)
class _Pod:
    namespace: str
    name: str
    address: str
    hostname: str = ""
    subdomain: str = ""

    def names(self, seen_from: _Pod) -> list[str]:
        """This pod's names in the hosts file of ``seen_from``, the fully qualified first."""
        if self.hostname and self.subdomain:
            short = f"{self.hostname}.{self.subdomain}"
        else:
            short = self.name
        qualified = f"{short}.{self.namespace}"
        names = [f"{qualified}.svc.{DOMAIN}", f"{qualified}.svc", qualified]
        if self.namespace == seen_from.namespace:
            names.append(short)
        if self is seen_from and self.hostname and self.hostname not in names:
            names.append(self.hostname)
        return names


class PodNetwork:
    """The bridge of one kubelet and the namespaces of its pods."""

    def __init__(self) -> None:
        self.tag = f"tfk{os.getpid()}"
        self.bridge = self.tag[:15]
        self.subnet = _free_subnet()
        self.gateway = str(self.subnet.network_address + 1)
        self._free = [str(self.subnet.network_address + k) for k in range(2, 4000)]
        self._pods: dict[str, _Pod] = {}
        """pod uid -> where it is and what it is called"""
        self._netns: dict[str, str] = {}
        self._lock = threading.Lock()
        self._writing = threading.Lock()

    def start(self) -> PodNetwork:
        """Remove what a dead kubelet left, then make the bridge."""
        _remove_stale()
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        log.info("pod network %s on bridge %s", self.subnet, self.bridge)
        return self

    def stop(self) -> None:
        """Remove every pod namespace and the bridge."""
        for uid in list(self._netns):
            self.detach(uid)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)

    def attach(
        self, uid: str, namespace: str, name: str, *, hostname: str = "", subdomain: str = ""
    ) -> Attachment:
        """A namespace and address for pod ``uid``; every pod's hosts file learns its names
        (``hostname`` and ``subdomain``: the pod's ``spec`` fields, when it has them)."""
        netns, veth = f"{self.tag}-{uid[:13]}", f"v{uid[:13]}"
        with self._lock:
            address = self._free.pop(0)
            self._pods[uid] = _Pod(namespace, name, address, hostname or "", subdomain or "")
            self._netns[uid] = netns
        _ip("netns", "add", netns)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _ip("link", "set", veth, "master", self.bridge, "up")
        _ip("-n", netns, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        _ip("-n", netns, "route", "add", "default", "via", self.gateway)
        (NETNS_DIR / netns).mkdir(parents=True, exist_ok=True)
        (NETNS_DIR / netns / "hosts").touch()
        search = f"{namespace}.svc.{DOMAIN} svc.{DOMAIN} {DOMAIN}"
        (NETNS_DIR / netns / "resolv.conf").write_text(f"search {search}\noptions ndots:5\n")
        self._write_hosts()
        return Attachment(netns=netns, address=address)

    def detach(self, uid: str) -> None:
        """Remove pod ``uid``'s namespace (its veth pair goes with it) and its names."""
        with self._lock:
            netns = self._netns.pop(uid, None)
            entry = self._pods.pop(uid, None)
            if entry is not None:
                self._free.append(entry.address)
        if netns is None:
            return
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        shutil.rmtree(NETNS_DIR / netns, ignore_errors=True)
        self._write_hosts()

    def _write_hosts(self) -> None:
        with self._writing:
            self._rewrite()

    def _rewrite(self) -> None:
        with self._lock:
            pods = dict(self._pods)
            netns = dict(self._netns)
        for uid, path in netns.items():
            own = pods.get(uid)
            if own is None:
                continue
            lines = ["127.0.0.1 localhost", "::1 localhost"]
            lines += [f"{pod.address} {' '.join(pod.names(own))}" for pod in pods.values()]
            hosts = NETNS_DIR / path / "hosts"
            try:
                with hosts.open("r+") as f:  # in place: the bind mount keeps this inode
                    f.truncate(0)
                    f.write("\n".join(lines) + "\n")
            except FileNotFoundError:
                continue


def _free_subnet() -> ipaddress.IPv4Network:
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=False)
    used = [
        ipaddress.ip_network(word.split()[0], strict=False)
        for word in routes.stdout.splitlines()
        if word and word[0].isdigit()
    ]
    start = 100 + os.getpid() % 100
    for k in range(100):
        candidate = ipaddress.IPv4Network(f"10.{100 + (start + k) % 100}.0.0/16")
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise RuntimeError("no free 10.x.0.0/16 for the pod network")


def _remove_stale() -> None:
    """Namespaces and bridges of kubelets whose process is gone."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    for line in listing.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith("tfk") and not _alive(name[3:].split("-")[0]):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
            shutil.rmtree(NETNS_DIR / name, ignore_errors=True)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False)
    for line in links.stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith("tfk") and not _alive(name[3:]):
            subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


def _alive(pid: str) -> bool:
    return pid.isdigit() and Path(f"/proc/{pid}").exists()
