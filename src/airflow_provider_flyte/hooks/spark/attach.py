"""Spark on an existing cluster named by a connection: a standalone master or a Spark Connect server."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.core.spec import ATTACH
from airflow_provider_flyte.exceptions import FlyteEngineError
from airflow_provider_flyte.hooks.spark import FlyteSparkHook
from airflow_provider_flyte.hygiene.environ import snapshot
from airflow_provider_flyte.hygiene.signals import sigterm_stops_wait

if TYPE_CHECKING:
    from airflow_provider_flyte.hooks.clusters import ClusterTarget

#: Set by the Spark Connect client while a session is up; put back after the task.
CONNECT_MODE_ENV = ("SPARK_CONNECT_MODE_ENABLED",)


class AttachSparkHook(FlyteSparkHook):
    """Client mode on ``spark://host:7077`` (this process is the driver), or a Spark Connect session."""

    placement = ATTACH

    def start(self) -> dict[str, Any]:
        from airflow_provider_flyte.hooks.clusters import probe

        target = self._cluster_target()
        kind = "Spark Connect server" if target.scheme == "sc" else "Spark master"
        probe(target, timeout=target.connect_timeout, engine=kind)
        if target.scheme == "sc":
            return self._start_connect(target)
        return self._start_master(target)

    def _start_master(self, target: ClusterTarget) -> dict[str, Any]:
        """Client mode on a standalone master: this process is the driver."""
        from pyspark import SparkContext, cloudpickle
        from pyspark.sql import SparkSession

        conf = self.cluster_conf(target)
        configured = conf.pop("spark.master", None)
        if configured and configured != target.address:
            self.log.warning("spark_conf sets spark.master=%s; %s wins", configured, target.describe())
        active = SparkContext._active_spark_context
        if active is not None and active.master != target.address:
            raise FlyteEngineError(
                f"A SparkContext for {active.master} is already running in this process; cannot also run on "
                f"{target.describe()}. Stop it first (spark.stop()) or run the task in a fresh process."
            )
        if "spark.pyspark.python" in conf:
            self.set_default_env("PYSPARK_PYTHON", conf["spark.pyspark.python"])
        session = self._owned_session(
            SparkSession.builder.appName(self.app_name()).master(target.address), conf,
            reused=f"Reusing the SparkContext on {target.address} already running in this process",
            master=(target, target.connect_timeout),
        )
        self.log.info("Spark session on %s (application %s)", target.describe(), session.sparkContext.applicationId)
        self._add_bundle_to_context(session)
        self.pickle_by_value(cloudpickle)
        self._record_ui(session)
        return {"spark_session": session}

    def _start_connect(self, target: ClusterTarget) -> dict[str, Any]:
        """A Spark Connect session: a gRPC client; the server is never stopped by the task."""
        started = time.monotonic()
        from pyspark import cloudpickle
        from pyspark.sql import SparkSession
        from pyspark.sql.connect import session as _connect_client  # noqa: F401  (pandas, pyarrow, grpc)

        # The client's import is most of a warm acquire (~0.5 s on 2 CPUs): said apart from the rest.
        self.log.info("Spark Connect client imported in %.2fs", time.monotonic() - started)

        conf = self.cluster_conf(target)
        for key in ("spark.master", "spark.remote"):
            conf.pop(key, None)
        # builder.remote(...).create() marks the process as Spark Connect (pyspark.sql.utils.is_remote);
        # undo that after the task, or later local sessions in this process would be Connect ones.
        from airflow_provider_flyte.hygiene.environ import restore

        self.add_cleanup(restore, snapshot(*CONNECT_MODE_ENV))
        url = self.connect_url(target)
        with sigterm_stops_wait(target.describe()):
            silent = _connect_server_is_silent(url, target.connect_timeout)
        if silent:
            from airflow_provider_flyte.hooks.clusters import no_answer_error

            raise no_answer_error(target, "Spark Connect server", target.connect_timeout,
                                  "no gRPC channel became ready (HTTP/2, with TLS when use_ssl is set)")
        session = SparkSession.builder.remote(url).create()
        self.add_cleanup(_stop_connect_session, session)
        self.log.info("Spark Connect session %s on %s", getattr(session, "session_id", "?"), target.describe())

        rejected = []
        for key, value in conf.items():
            try:
                session.conf.set(key, value)
            except Exception as exc:
                rejected.append(f"{key} ({_first_line(exc)})")
        if rejected:
            self.log.warning(
                "Spark Connect does not let a session set these properties; set them on the server: %s",
                "; ".join(rejected),
            )

        bundle = self.code_bundle("zip")
        if bundle is not None:
            session.addArtifacts(str(bundle.path), pyfile=True)
        self.pickle_by_value(cloudpickle)
        return {"spark_session": session}


def _connect_server_is_silent(url: str, timeout: float) -> bool:
    """Whether a gRPC channel to ``url`` (its TLS and token as the session's) is not ready within ``timeout`` s.

    The Spark Connect client retries its first RPC for about ten minutes (``DefaultPolicy``) and the
    session builder takes no deadline; a server that accepts TCP and never speaks HTTP/2 holds it
    that long. The channel is built by PySpark's own ``DefaultChannelBuilder``.
    """
    from pyspark.sql.connect.client.core import DefaultChannelBuilder

    from airflow_provider_flyte.hooks.clusters import channel_is_silent

    return channel_is_silent(DefaultChannelBuilder(url).toChannel(), timeout)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _stop_connect_session(session: Any) -> None:
    """Cancel what the task left running, release the session, close the channel; the server stays."""
    with contextlib.suppress(Exception):
        session.interruptAll()
    session.stop()
