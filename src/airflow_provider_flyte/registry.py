"""The plugin registry (moved to :mod:`airflow_provider_flyte.runtime.registry`; this name stays)."""

from airflow_provider_flyte.runtime.registry import (  # noqa: F401
    PluginEntry,
    all_link_paths,
    all_links,
    entries,
    find,
    register,
    registered_names,
)
