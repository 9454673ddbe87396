"""Checks of the Spark properties whose bad values Spark itself reports late or obscurely.

A ``spark.driver.memory`` of ``"1m"`` ends in ``System memory ... must be at least 471859200``
from inside the JVM; ``spark.executor.instances="two"`` in a ``NumberFormatException``; a memory of
``"2 GB"`` (a space) stops the JVM from starting; a key without the ``spark.`` prefix is ignored with a
warning. These are refused when the ``Spark`` config is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from airflow_provider_flyte.core.bounds import MAX_WORKERS, human_bytes
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.known_keys import did_you_mean

#: Spark's own floor for driver and executor memory (``UnifiedMemoryManager``: 450 MiB... x 1).
MIN_SPARK_MEMORY = 450 * 2**20
#: Spark's ``JavaUtils.byteStringAs``: a whole number, then a unit, no space (case and outer spaces ignored).
_JVM_SIZE_RE = re.compile(r"^\s*(\d+)(b|[kmgtp]b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 2**20, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}  # no unit: MiB, as Spark
_SIZE_FIX = 'use a size such as "4g" or "512m": a whole number and a unit (b, k, m, g, t or p), with no space'
_LOCAL_MASTER_RE = re.compile(r"^local(\[(\*|[1-9]\d*)(,\s*[1-9]\d*)?\])?$")
_COUNTS = {"spark.executor.instances": 1, "spark.executor.cores": 1, "spark.driver.cores": 1,
           "spark.dynamicAllocation.minExecutors": 0, "spark.dynamicAllocation.maxExecutors": 1}
_MEMORY = ("spark.driver.memory", "spark.executor.memory")
#: Other sizes Spark reads with ``byteStringAs`` (only their form is checked).
_SIZES = ("spark.driver.memoryOverhead", "spark.executor.memoryOverhead", "spark.executor.pyspark.memory",
          "spark.driver.maxResultSize", "spark.memory.offHeap.size", "spark.kryoserializer.buffer",
          "spark.kryoserializer.buffer.max")
#: Hadoop's property prefixes: such a key belongs in ``hadoop_conf``.
_HADOOP_PREFIXES = ("fs.", "hadoop.", "dfs.", "yarn.", "mapreduce.", "hive.", "io.", "ipc.", "ha.")


#: Well-known properties: a key one typo away from one of these is refused (Spark ignores unknown keys).
KNOWN = (*_COUNTS, *_MEMORY, "spark.master", "spark.executor.memoryOverhead", "spark.driver.memoryOverhead",
         "spark.dynamicAllocation.enabled", "spark.sql.shuffle.partitions", "spark.default.parallelism",
         "spark.pyspark.python", "spark.kubernetes.container.image", "spark.jars.packages", "spark.submit.pyFiles")


def check_spark_conf(field: str, conf: Mapping[str, str]) -> None:
    """Counts are integers in range, memory sizes are JVM sizes of at least 450 MiB, ``local[N]`` is well formed,
    and no key is a near miss of a well-known property (``spark.executor.instance``)."""
    for key in conf:
        _check_prefix(field, key)
        close = did_you_mean(key, KNOWN, cutoff=0.93) if key not in KNOWN else None
        if close:
            raise FlyteConfigError(f"{field}[{key!r}]", key, "not a Spark property (Spark would ignore it)",
                                   f"did you mean {close!r}?")
    for key, minimum in _COUNTS.items():
        if key in conf:
            _check_count(f"{field}[{key!r}]", conf[key], minimum)
    for key in _MEMORY:
        if key in conf:
            _check_memory(f"{field}[{key!r}]", conf[key])
    for key in _SIZES:
        if key in conf and jvm_bytes(conf[key]) is None:
            raise FlyteConfigError(f"{field}[{key!r}]", conf[key], "not a JVM memory size", _SIZE_FIX)
    master = conf.get("spark.master")
    if master is not None and master.startswith("local") and not _LOCAL_MASTER_RE.match(master):
        raise FlyteConfigError(f"{field}['spark.master']", master, "not a local master URL",
                               'use "local[*]", "local[4]" or "local[4,2]" (threads, retries), or leave it unset')


def _check_prefix(field: str, key: str) -> None:
    """Spark reads only ``spark.*`` keys: a Hadoop key belongs in ``hadoop_conf``, a Spark one needs the prefix."""
    if not isinstance(key, str) or key.startswith("spark."):
        return
    problem = "Spark reads only properties that start with 'spark.' (it would ignore this one with a warning)"
    if key.startswith(_HADOOP_PREFIXES):
        fix = f"a Hadoop property goes in hadoop_conf: Spark(hadoop_conf={{{key!r}: ...}}) (applied as spark.hadoop.{key})"
    else:
        close = did_you_mean(f"spark.{key}", KNOWN, cutoff=0.8) or f"spark.{key}"
        fix = f"did you mean {close!r}? A Hadoop property goes in hadoop_conf (applied as spark.hadoop.<key>)"
    raise FlyteConfigError(f"{field}[{key!r}]", key, problem, fix)


def _check_count(field: str, value: str, minimum: int) -> None:
    text = str(value).strip()
    if not text.isdigit():
        raise FlyteConfigError(field, value, "not a whole number", f'use a count such as "{max(minimum, 2)}"')
    if not minimum <= int(text) <= MAX_WORKERS:
        raise FlyteConfigError(field, value, f"must be from {minimum} to {MAX_WORKERS}",
                               f'use a count such as "{max(minimum, 2)}"')


def jvm_bytes(value: str) -> int | None:
    """``"4g"`` -> bytes (no unit: MiB, as Spark); ``None`` when it is not a JVM size."""
    match = _JVM_SIZE_RE.match(str(value))
    return int(match.group(1)) * _UNITS[(match.group(2) or "")[:1].lower()] if match else None


def check_local_driver_memory(conf: Mapping[str, str], machine_bytes: int) -> None:
    """Locally the driver JVM runs on this machine: its heap must fit in this machine's memory."""
    value = conf.get("spark.driver.memory")
    size = jvm_bytes(value) if value is not None else None
    if size is not None and size > machine_bytes:
        raise FlyteConfigError(
            "Spark.spark_conf['spark.driver.memory']", value,
            f"more than this machine's memory ({human_bytes(machine_bytes)}); Spark runs on this worker "
            "when the task has no conn_id",
            "ask for less, or run on a cluster (conn_id=...)",
        )


def _check_memory(field: str, value: str) -> None:
    size = jvm_bytes(value)
    if size is None:
        raise FlyteConfigError(field, value, "not a JVM memory size", _SIZE_FIX)
    if size < MIN_SPARK_MEMORY:
        raise FlyteConfigError(
            field, value, f"Spark needs at least {human_bytes(MIN_SPARK_MEMORY)} here (this is {human_bytes(size)}; "
            "the JVM would fail with 'must be at least 471859200')", 'use a size such as "1g"',
        )
