"""``python -m airflow_tfjob``: ``render`` (a dry run of a task) and ``demo``."""

from __future__ import annotations

import sys


def main() -> int:
    """Dispatch to a sub-command."""
    command, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "render":
        from airflow_tfjob.cli import render

        return render.main(rest)
    if command == "demo":
        from airflow_tfjob import demo

        return demo.main()
    sys.stderr.write("usage: python -m airflow_tfjob {render DAG_FILE TASK_ID | demo}\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
