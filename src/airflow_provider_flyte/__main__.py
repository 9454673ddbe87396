"""``python -m airflow_provider_flyte check --conn-id CONN``: what a Kubernetes connection can do.

The same command is ``airflow flyte check --conn-id CONN`` (Airflow's CLI finds :func:`get_cli_commands`
through the provider info's ``cli``). One line per check, ✓ or ✗ with the fix (docs/kubernetes.md,
"Check a connection"); exit status 1 when some task could not run there, 0 otherwise (2: bad arguments).
The checks are in :mod:`airflow_provider_flyte.remote.preflight`. Warm engines have their own command
(``python -m airflow_provider_flyte.warm``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from airflow_provider_flyte.remote import preflight, rbac

HELP = "check what a kubernetes connection can do (API, CRDs, RBAC, staging store, Kueue queue)"


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds (e.g. 5)")
    return value


def engine_list(text: str) -> list[str]:
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    known = sorted(preflight.engine_kinds())
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"--engine {text!r}: {', '.join(unknown) or 'no engine'} is not one of "
                                         f"{','.join(known)} (e.g. --engine spark,ray)")
    return names


#: The options of ``check``: ``(flags, argparse keywords)``, for this parser and Airflow's CLI alike.
OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--conn-id",), {"required": True, "help": "the kubernetes connection (cncf-kubernetes provider)"}),
    (("--namespace",), {"help": "the job namespace (default: as for a task, [flyte] kubernetes_namespace, else the "
                                "connection's, else default)"}),
    (("--queue",), {"help": f"a Kueue LocalQueue to look for (default: the connection's extra "
                            f"{preflight.KUEUE_EXTRA!r}, else [flyte] kubernetes_kueue_queue; none: not checked)"}),
    (("--engine",), {"type": engine_list, "dest": "engines",
                     "help": "the engines to check, comma-separated, e.g. spark,ray (default: all); the others are "
                             "shown for information and do not fail the check"}),
    (("--role",), {"choices": (rbac.WORKER, rbac.TRIGGERER),
                   "help": "check only the worker's or the triggerer's Role (default: both, for a connection both "
                           "use)"}),
    (("--timeout",), {"type": positive, "default": preflight.DEFAULT_TIMEOUT,
                      "help": f"seconds one API request may take (default {preflight.DEFAULT_TIMEOUT:g})"}),
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m airflow_provider_flyte",
                                  description="Commands of the Flyte plugins provider.")
    sub = top.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help=HELP)
    for flags, options in OPTIONS:
        check.add_argument(*flags, **options)
    return top


def check(args: argparse.Namespace) -> int:
    """Run the checks, print their lines and a summary; the exit status."""
    lines = preflight.check_connection(args.conn_id, namespace=args.namespace, queue=args.queue, role=args.role,
                                       timeout=args.timeout, engines=args.engines)
    for line in lines:
        print(line, flush=True)
    status = preflight.exit_status(lines)
    failed = sum(line.fatal for line in lines)
    print(f"{failed} check(s) failed: some tasks cannot run through {args.conn_id!r}" if status
          else f"tasks can run through {args.conn_id!r}")
    return status


def main(argv: list[str] | None = None) -> int:
    return check(parser().parse_args(argv))


def airflow_check(args: argparse.Namespace) -> None:
    """``airflow flyte check``: Airflow's CLI ignores a command's return value, so the status is an exit."""
    status = check(args)
    if status:
        sys.exit(status)


def get_cli_commands() -> list[Any]:
    """``airflow flyte check ...`` (named by the provider info's ``cli``)."""
    from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand

    args = tuple(Arg(flags, **options) for flags, options in OPTIONS)
    return [GroupCommand(name="flyte", help="Commands of the Flyte plugins provider", subcommands=(
        ActionCommand(name="check", help=HELP, func=airflow_check, args=args),))]


if __name__ == "__main__":
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
    sys.exit(main())
