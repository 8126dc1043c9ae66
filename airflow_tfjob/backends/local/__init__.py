"""The local backend: a TFJob's replicas as local processes, with the training operator's rules.

Each replica runs its ``tensorflow`` container's command (the image is ignored) in a process group
of its own, with ``TF_CONFIG`` naming free localhost ports, the container's environment, and a
working directory under one run directory. The supervisor applies CONTRACT.md: success policy,
restart policies and ``backoffLimit``, ``activeDeadlineSeconds``, ``cleanPodPolicy``, and a
start-up timeout. Nothing outlives the task: replicas die with the task process (``PDEATHSIG``),
are stopped SIGTERM-then-SIGKILL when the job ends, and a sweep by environment marker catches
anything they spawned. Linux only.
"""
