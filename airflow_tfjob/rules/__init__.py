"""The rules of running jobs, decided without I/O: what a job's status and pods say, when a wait
ends and how, what the task returns or reports, which jobs are orphans, which events fire.

No Airflow, no Kubernetes client, no network or process I/O (import-linter contracts check it);
the backends, triggers and operators do the I/O and ask these modules what it means.
"""
