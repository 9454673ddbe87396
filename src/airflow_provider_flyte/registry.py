"""The engine table's public face: ``register()`` a new engine (the table is :mod:`airflow_provider_flyte.core.engines`).

``register(ConfigType, "pkg.hooks.x.XHook", placements=("local",))`` from an engine's own package adds
its one entry; docs/adding-an-engine.md walks through it.
"""

from airflow_provider_flyte.core.engines import (  # noqa: F401
    ConnectionType,
    PluginEntry,
    all_link_paths,
    all_links,
    entries,
    find,
    register,
    registered_names,
    unregister,
)
