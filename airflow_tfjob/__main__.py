"""``python -m airflow_tfjob``: ``render`` (a dry run of a task) and ``demo``."""

from __future__ import annotations

import sys

USAGE = """\
usage: python -m airflow_tfjob {render,demo} ...

  render DAG_FILE TASK_ID [--run-id RUN_ID] [--namespace NS]
                  print the TFJob manifest the task would submit (no cluster needed)
  demo [--dags DIR] [--home DIR]
                  run the example training DAG on the local backend (what .ci/demo runs)

'python -m airflow_tfjob COMMAND --help' describes a command.
"""


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a sub-command."""
    args = sys.argv[1:] if argv is None else argv
    command, rest = (args[0], args[1:]) if args else ("", [])
    if command == "render":
        from airflow_tfjob.cli import render

        return render.main(rest)
    if command == "demo":
        from airflow_tfjob import demo

        return demo.main(rest)
    if command in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    sys.stderr.write(USAGE if not command else f"unknown command {command!r}\n\n{USAGE}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
