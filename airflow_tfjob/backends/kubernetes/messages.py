"""What a follower says in the task log, kept in one place (docs quote them: tests/docs)."""

AGAIN = "TFJob %s: cannot %s now (%s); trying again in %.1f s"
LATER = (
    "TFJob %s: the log of %s is read when it ends, or live once a log stream is free (this "
    "process follows at most %d logs live: [tfjob] max_log_streams)"
)
"""Said once per replica that cannot be followed live for now (``logstreams``)."""
UNREAD_LOG = "TFJob %s: the log of %s was not read to its end (%d lines read): %s"
"""A finished replica's lines that could not be read: said, never dropped silently
(``cleanPodPolicy: All`` deletes pods the moment the job ends, sometimes before a read)."""
