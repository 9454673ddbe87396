"""Spark's lifecycle: build the ``SparkSession`` in ``pre``, stop it (and the JVM it started) in ``post``.

One module per placement (``local``, ``attach``, ``in_cluster``, ``warm``, ``kubernetes``); this one holds
the engine hook they share, and :mod:`.jvm` the driver JVM a task starts.
Places a task's session can live:

* **locally** (no connection): ``local[*]`` in this process; executors' Python workers get
  the project root on ``PYTHONPATH``.
* **a standalone master** (``spark://host:7077``): this process is the driver (client mode);
  the code bundle goes to executors with ``sparkContext.addPyFile``.
* **a Spark Connect server** (``sc://host:15002``): this process is a thin gRPC client; the
  code bundle goes to the server's Python workers with ``session.addArtifacts(..., pyfile=True)``.

Either way functions from the DAG file are pickled by value with ``pyspark.cloudpickle``
(Spark Connect serializes UDFs with the same module), so UDFs can import the user's modules.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from airflow_provider_flyte.bundle.user_code import prepend_path
from airflow_provider_flyte.core.error_text import exception_chain, keep_message
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.hooks.base import FlyteEngineHook
from airflow_provider_flyte.hooks.spark.jvm import (
    jvm_error_text,
    jvm_error_types,
    launch_driver_jvm,
    master_must_answer,
    stop_jvm,
)
from airflow_provider_flyte.plugins.spark import DEFAULT_APP_NAME, Spark

if TYPE_CHECKING:
    from airflow_provider_flyte.hooks.clusters import ClusterTarget

LOCAL_MASTER = "local[*]"


class FlyteSparkHook(FlyteEngineHook[Spark]):
    """Owns one task's ``SparkSession``: local, on a standalone master, or on Spark Connect.

    Connections (``conn_id``): ``flyte_spark`` with ``host`` ``spark://h:7077`` or
    ``sc://h:15002``; the apache-spark provider's ``spark`` (``host`` ``spark://h``, ``port``)
    and ``spark_connect`` (``host`` ``sc://h`` or ``h``, ``port`` default 15002, ``login`` ->
    ``user_id``, ``password`` -> bearer token, extra ``use_ssl``). Extras whose keys start with
    ``spark.`` are Spark properties (as ``@task.pyspark`` applies them); the plugin's
    ``spark_conf`` wins over them. Extra ``connect_timeout``: seconds the cluster's port may take
    to answer before the task fails (default 10).

    On a standalone master every property applies (the task's driver is created here, in
    client mode): executors connect back to this worker, so it must be reachable from the
    cluster (set ``spark.driver.host`` / ``spark.driver.port`` / ``spark.blockManager.port`` in
    ``spark_conf`` or the connection's extras where the default address or ports are not).
    On Spark Connect the server owns the Spark application, so only properties that a session
    may set at run time apply: runtime SQL settings (``spark.sql.shuffle.partitions``,
    ``spark.sql.session.timeZone``, ``spark.sql.ansi.enabled``...) and keys Spark does not know
    (``spark.hadoop.*``). Static SQL settings and core settings (``spark.executor.*``,
    ``spark.driver.*``, ``spark.app.name``, ``spark.jars``, ``spark.executorEnv.*``) are
    rejected by the server; they are logged as a warning and the task goes on. Set them on
    the server instead. ``TaskEnvironment.env_vars`` reach executors on a standalone master
    (``spark.executorEnv.*``), not on Spark Connect.

    The code bundle (the project root, see :mod:`airflow_provider_flyte.bundle`) is shipped
    unless ``[flyte] code_bundle`` / ``AIRFLOW__FLYTE__CODE_BUNDLE`` is ``false``; no project
    root means no bundle, which is not an error (code baked into the cluster's image).
    """

    config_type = Spark

    def app_name(self) -> str:
        return self.task.display_name if self.task.dag_file or self.task.run_id else DEFAULT_APP_NAME

    def session_conf(self) -> dict[str, str]:
        """The properties a local session is built with: plugin config plus local defaults."""
        conf = self.config.effective_conf()
        conf.setdefault("spark.master", LOCAL_MASTER)
        conf.setdefault("spark.pyspark.python", sys.executable)
        conf.setdefault("spark.pyspark.driver.python", sys.executable)
        conf.setdefault("spark.ui.showConsoleProgress", "false")  # a terminal's progress bar, noise in a task log
        if self.task.project_root is not None:
            key = "spark.executorEnv.PYTHONPATH"
            conf[key] = prepend_path(conf.get(key), str(self.task.project_root))
        self._add_executor_env(conf)
        return conf

    def cluster_conf(self, target: ClusterTarget) -> dict[str, str]:
        """Properties for a cluster session: ``spark.*`` connection extras, then the plugin config.

        The driver's paths are not passed on (no ``PYTHONPATH`` or interpreter of this worker):
        executors on other hosts get the code from the bundle and use their own Python unless
        ``executor_path`` / ``spark.pyspark.python`` says otherwise.
        """
        conf = {k: str(v) for k, v in target.extra.items() if k.startswith("spark.")}
        conf.update(self.config.effective_conf())
        if target.scheme == "spark":
            self._add_executor_env(conf)
        return conf

    def _add_executor_env(self, conf: dict[str, str]) -> None:
        for key, value in self.spec.env_vars.items():
            conf.setdefault(f"spark.executorEnv.{key}", value)

    def _add_bundle_to_context(self, session: Any) -> None:
        """Ship the code bundle to executors with ``addPyFile`` (undoing its ``sys.path`` entry after the task)."""
        bundle = self.code_bundle("zip")
        if bundle is None:
            return
        before = list(sys.path)
        session.sparkContext.addPyFile(str(bundle.path))
        # addPyFile also puts the zip on this driver's sys.path; undo that after the task.
        self.add_cleanup(_remove_from_sys_path, [p for p in sys.path if p not in before])

    # -- the contract: placements implement start() ---------------------------------------------
    def pre(self) -> dict[str, Any]:
        data = self.start()
        self._session = data["spark_session"]
        self.job_identity.update(_job_identity(self._session))
        return data

    def start(self) -> dict[str, Any]:
        """Create or connect the task's ``SparkSession``; return ``{"spark_session": ...}``."""
        raise NotImplementedError

    def interrupt(self) -> None:
        """Cancel this task's running Spark jobs (Connect: its operations), e.g. on a timeout."""
        session = getattr(self, "_session", None)
        if session is None:
            return
        if hasattr(session, "interruptAll") and not hasattr(session, "sparkContext"):
            session.interruptAll()
        else:
            session.sparkContext.cancelAllJobs()

    def capture_error(self, exc: BaseException) -> None:
        """Read the JVM errors' text in ``exc``'s chain now: their ``str()`` asks the JVM, which ``post`` stops."""
        jvm_errors = jvm_error_types()
        for error in exception_chain(exc):
            if isinstance(error, jvm_errors):
                keep_message(error, jvm_error_text(error))

    def _owned_session(self, builder: Any, conf: dict[str, str], *, reused: str,
                       master: tuple[ClusterTarget, float] | None = None) -> Any:
        """``builder.getOrCreate()``; stopped in post when this task created the context.

        ``master``: a standalone master and its ``connect_timeout``; a context created here must be
        registered with it within that plus ``ANSWER_MARGIN_S`` (:func:`master_must_answer`).
        """
        from pyspark import SparkContext

        owns_context = SparkContext._active_spark_context is None
        if owns_context:
            self._private_local_dir(conf, launching=SparkContext._gateway is None)
        if SparkContext._gateway is None:
            self.add_cleanup(stop_jvm)
            launch_driver_jvm(conf)
        for key, value in conf.items():
            builder = builder.config(key, value)
        bounded = master_must_answer(*master) if master and owns_context else contextlib.nullcontext()
        with bounded:
            session = builder.getOrCreate()
        if owns_context:
            self.add_cleanup(session.stop)
        else:
            self.log.info(reused)
            for key, value in conf.items():
                _set_runtime_conf(session, key, value)
        return session

    # -- helpers ------------------------------------------------------------------------------
    def _cluster_target(self) -> ClusterTarget:
        target = self.cluster()
        scheme, _, rest = target.address.partition("://")
        name = rest.split("/", 1)[0].split(":", 1)[0].lower()  # "local", "local[2]", "yarn" are not hosts
        if scheme not in ("spark", "sc") or name in ("local", "yarn") or name.startswith("local["):
            raise FlyteConfigError(
                f"connection {self.conn_id!r}.host", target.address,
                "a Flyte Spark task runs on a Spark standalone master (spark://host:port) or a Spark "
                "Connect server (sc://host:port)",
                "set host to such a URL, or drop conn_id to run locally on the worker",
            )
        return target

    def connect_url(self, target: ClusterTarget) -> str:
        """``sc://host:port/;token=...;user_id=...;use_ssl=...`` from the connection.

        Parameters already in ``host`` win; ``password`` is the bearer token, ``login`` the
        user id, extra ``use_ssl`` turns TLS on (a token needs TLS unless the host is ``localhost``).
        """
        base, _, raw_params = target.address.partition("/;")
        params: dict[str, str] = {}
        for item in filter(None, raw_params.split(";")):
            key, _, value = item.partition("=")
            params[key] = unquote(value)
        if target.token:
            params.setdefault("token", target.token)
        login = self._login()
        if login:
            params.setdefault("user_id", login)
        use_ssl = target.extra.get("use_ssl")
        if use_ssl is not None:
            params.setdefault("use_ssl", str(use_ssl).lower())
        base = base.rstrip("/")
        if not params:
            return base
        if params.get("token"):
            from airflow_provider_flyte.core.masking import register

            register(quote(str(params["token"]), safe=""))  # the token as it appears in the URL
        return f"{base}/;" + ";".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())

    def _login(self) -> str | None:
        from airflow.sdk import BaseHook

        assert self.conn_id is not None
        return BaseHook.get_connection(self.conn_id).login or None

    def _private_local_dir(self, conf: dict[str, str], *, launching: bool) -> None:
        """A scratch folder of the task's own for the context, unless the user chose one.

        For a driver JVM started here it goes in the JVM's environment (``SPARK_LOCAL_DIRS``, which Spark
        reads first): ``spark.local.dir`` in the conf makes Spark warn that "spark.local.dir will be
        overridden by the value set by the cluster manager", although nothing overrides it locally.
        """
        if "spark.local.dir" in conf or os.environ.get("SPARK_LOCAL_DIRS"):
            return
        if launching:
            self.set_default_env("SPARK_LOCAL_DIRS", self.scratch_dir("spark"))
        else:  # a JVM already running reads no environment any more
            conf["spark.local.dir"] = self.scratch_dir("spark")

    def _record_ui(self, session: Any) -> None:
        try:
            url = session.sparkContext.uiWebUrl
        except Exception:
            url = None
        if url:
            self.links["spark_ui"] = url


def _set_runtime_conf(session: Any, key: str, value: str) -> None:
    with contextlib.suppress(Exception):  # static confs cannot change on a live context
        session.conf.set(key, value)


def _job_identity(session: Any) -> dict[str, str]:
    """The application's id (a Spark Connect session: its session id), for the OpenLineage facet."""
    try:
        return {"sparkApplicationId": str(session.sparkContext.applicationId)}
    except Exception:  # a Spark Connect session has no SparkContext here
        session_id = getattr(session, "session_id", None)
        return {"sparkConnectSessionId": str(session_id)} if session_id else {}


def _remove_from_sys_path(entries: list[str]) -> None:
    for entry in entries:
        while entry in sys.path:
            sys.path.remove(entry)


