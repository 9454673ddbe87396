"""``python -m airflow_provider_flyte.warm list|stop``: the warm engines on this machine.

``list`` prints one line per server: name, engine, state, address, supervisor and server pids,
attached tasks. ``stop NAME...`` (or ``stop --all``) asks each supervisor to stop its server
(SIGTERM) and waits until the folder is gone; a server whose supervisor is dead is stopped directly.
The state folder is ``[flyte] warm_dir`` (``AIRFLOW__FLYTE__WARM_DIR``).
"""

from __future__ import annotations

import argparse
import sys
import time

from airflow_provider_flyte.warm import state
from airflow_provider_flyte.warm.supervisor import request_stop

STOP_TIMEOUT_S = 60.0


def list_servers() -> list[str]:
    lines = []
    for folder, record in state.servers():
        leases = len(state.leases(folder))
        supervisor = int(record.supervisor.get("pid", 0)) if record.supervisor else 0
        status = record.state if state.alive(record.supervisor) else f"{record.state} (supervisor dead)"
        pids = ",".join(str(int(p["pid"])) for p in record.pids) or "-"
        lines.append(f"{record.name}  {record.engine}  {status}  {record.address or '-'}  supervisor {supervisor}  "
                     f"server {pids}  {leases} lease(s)  up {time.time() - record.created:.0f}s")
    return lines


def stop(names: list[str]) -> list[str]:
    chosen = [(folder, record) for folder, record in state.servers() if not names or record.name in names]
    return request_stop(chosen, wait_s=STOP_TIMEOUT_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_flyte.warm",
                                     description="List or stop the warm engine servers on this machine.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the warm servers")
    stopper = sub.add_parser("stop", help="stop warm servers")
    stopper.add_argument("names", nargs="*", help="server names (from list)")
    stopper.add_argument("--all", action="store_true", help="stop every warm server")
    args = parser.parse_args(argv)
    if args.command == "list":
        lines = list_servers()
        print("\n".join(lines) if lines else "no warm engines")
        return 0
    if not args.names and not args.all:
        parser.error("name the servers to stop, or pass --all")
    known = {record.name for _, record in state.servers()}
    unknown = [name for name in args.names if name not in known]
    for name in stop(args.names):
        print(f"stopped {name}")
    for name in unknown:
        print(f"no warm server named {name}", file=sys.stderr)
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main())
