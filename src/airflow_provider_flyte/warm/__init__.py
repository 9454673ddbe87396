"""Warm engines: engine servers on the worker machine that outlive the task (``ReusePolicy``).

Engine-independent; one job per module:

* :mod:`.state`       the state folder, its lock, one record (``server.json``) per server, leases
* :mod:`.fingerprint` which tasks may share a server (settings fixed at server start)
* :mod:`.pool`        a task's side: find or start a server, hold a lease, release it
* :mod:`.supervisor`  the detached process that owns one server: start, watch, stop after idle
* :mod:`.servers`     one module per engine: start its server, return the attach address
* ``python -m airflow_provider_flyte.warm list|stop``: operations (:mod:`.__main__`)

See docs/warm-engines.md. Nothing here imports Airflow or an engine at import time.
"""
