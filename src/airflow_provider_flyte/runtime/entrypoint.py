"""The in-cluster entrypoint: run a staged task where an engine operator started it.

``python -m airflow_provider_flyte.runtime <spec-uri> [--conn-id CONN]`` (or, as a Spark
application, ``spark-submit .../airflow_provider_flyte/runtime/__main__.py <spec-uri>``):

1. read ``spec.json`` (a newer format is refused), put back the secret values sealed out of it
   (:func:`~airflow_provider_flyte.core.sealed.unseal`: from the job's ``Secret``, masked), download the code bundle, verify its digest
   and extract it safely into a private folder, put that folder first on ``sys.path``;
2. load the call payload (the function by value, its args and kwargs);
3. run the same :class:`~airflow_provider_flyte.runtime.runner.TaskRunner` as the Airflow worker,
   with the ``in_cluster`` placement (the engine is the one this pod belongs to);
4. write the result (cloudpickle) or the error with its remote traceback next to the spec, and
   exit 0 or 1. A node of a multi-node job without global rank 0 writes nothing and exits 0.
   Nothing is written either once the worker has removed the run (the task was killed; exit 3,
   or 1 for an error): a pod stopped by its job's deletion must not put the run back.

The store's credentials come from ``--conn-id`` / the spec's staging connection (an
``AIRFLOW_CONN_<ID>`` variable in the pod) or the pod's own (IRSA, workload identity).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_provider_flyte.core.spec import IN_CLUSTER, TaskSpec
from airflow_provider_flyte.plugins.rebuild import config_of

log = logging.getLogger("airflow_provider_flyte.runtime")

#: Exit status of a run whose task raised (the error is in ``error.json``).
EXIT_TASK_FAILED = 1
#: Exit status when not even the spec could be read (nothing was written to the store).
EXIT_NO_SPEC = 2
#: Exit status of a run whose staged spec was removed while it ran (the task was killed): nothing written.
EXIT_RUN_REMOVED = 3


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_flyte.runtime",
                                     description="Run a task staged by airflow-provider-flyte.")
    parser.add_argument("spec_uri", help="URI of the staged spec.json (s3://.../runs/<key>/spec.json, file://...)")
    parser.add_argument("--conn-id", default=None, help="Airflow connection of the store (default: the spec's)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    from airflow_provider_flyte.remote import pod_side

    try:
        document = pod_side.load_spec(args.spec_uri, conn_id=args.conn_id)
    except Exception as exc:
        log.error("Cannot read the task spec %s: %s", args.spec_uri, exc)
        return EXIT_NO_SPEC
    workdir = Path(tempfile.mkdtemp(prefix="flyte-pod-"))
    try:
        result = _run(document, workdir, args.conn_id)
    except BaseException as exc:
        log.exception("The task failed")
        _write_error(document, exc, args)
        return EXIT_TASK_FAILED
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    from airflow_provider_flyte.bundle.calls import NOT_RANK_ZERO

    if result is NOT_RANK_ZERO:
        log.info("This node does not hold global rank 0; the task's result is written by the node that does")
        return 0
    import cloudpickle

    try:
        data = cloudpickle.dumps(result)
    except Exception as exc:
        error = TypeError(f"the task returned a {type(result).__name__} that cannot be sent back: {exc}. "
                          "Return plain values (numbers, strings, lists, dicts).")
        _write_error(document, error, args)
        return EXIT_TASK_FAILED
    if not _still_staged(args):
        return EXIT_RUN_REMOVED
    pod_side.write_result(document, data, conn_id=args.conn_id)
    log.info("Result written to %s", document["staging"]["result_uri"])
    return 0


def _run(document: dict[str, Any], workdir: Path, conn_id: str | None) -> Any:
    from airflow_provider_flyte.bundle.calls import loads_call
    from airflow_provider_flyte.core.sealed import unseal
    from airflow_provider_flyte.remote import pod_side
    from airflow_provider_flyte.runtime.runner import TaskRunner

    spec = TaskSpec.from_json(unseal(document))
    code = pod_side.fetch_bundle(document, workdir / "code", conn_id=conn_id)
    if code is not None:
        sys.path.insert(0, str(code))
        log.info("Code bundle %s extracted to %s", document["staging"]["bundle"]["digest"][:12], code)
    spec = spec.with_changes(placement=IN_CLUSTER, task=dataclasses.replace(spec.task, project_root=code))
    call = loads_call(pod_side.load_payload(document, conn_id=conn_id))
    runner = TaskRunner(spec, config_of(spec), call["fn"], logger=log)
    return runner.run(call["args"], call["kwargs"])


def _still_staged(args: argparse.Namespace) -> bool:
    """Whether the worker still waits for this run (it removes the run of a killed or timed-out task)."""
    from airflow_provider_flyte.remote import pod_side

    try:
        staged = pod_side.spec_exists(args.spec_uri, conn_id=args.conn_id)
    except Exception:
        log.warning("Could not check the staged run %s; writing the outcome anyway", args.spec_uri, exc_info=True)
        return True
    if not staged:
        log.warning("The staged run %s was removed while the task ran (it was killed or timed out): "
                    "its outcome is not written", args.spec_uri)
    return staged


def _write_error(document: dict[str, Any], exc: BaseException, args: argparse.Namespace) -> None:
    from airflow_provider_flyte.remote import pod_side

    if not _still_staged(args):
        return
    try:
        pod_side.write_error(document, pod_side.error_from_exception(exc), conn_id=args.conn_id)
    except Exception:
        log.exception("Could not write the error to the staging store")
