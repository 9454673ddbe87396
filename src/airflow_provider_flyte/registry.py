"""The plugin registry (moved to :mod:`airflow_provider_flyte.core.engines`; this name stays)."""

from airflow_provider_flyte.core.engines import (  # noqa: F401
    PluginEntry,
    all_link_paths,
    all_links,
    entries,
    find,
    register,
    registered_names,
)
