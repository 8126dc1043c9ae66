"""``TF_CONFIG`` as the training operator writes it (CONTRACT.md), for any address scheme.

Set on the ``tensorflow`` container only when the job has more than one replica in total; every
replica type is listed (the evaluator too), keys lowercased, addresses in index order, plus the
replica's own ``task`` and ``"environment": "cloud"``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

Address = Callable[[str, int], str]
"""``(replica type as in the spec, index) -> "host:port"``."""


def is_distributed(replica_counts: Mapping[str, int]) -> bool:
    """Whether the operator would set ``TF_CONFIG``: more than one replica in total."""
    return sum(replica_counts.values()) > 1


def tf_config(replica_counts: Mapping[str, int], address: Address, rtype: str, index: int) -> str:
    """The ``TF_CONFIG`` JSON of replica ``index`` of type ``rtype``."""
    cluster = {
        kind.lower(): [address(kind, i) for i in range(count)]
        for kind, count in sorted(replica_counts.items())
        if count > 0
    }
    config = {
        "cluster": cluster,
        "task": {"type": rtype.lower(), "index": index},
        "environment": "cloud",
    }
    return json.dumps(config, separators=(",", ":"))
