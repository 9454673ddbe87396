"""Code bundles: the user's project as a deterministic archive that workers can import.

Engine-independent. ``build_bundle`` selects files (ignore files, standard ignores,
secrets never), writes a reproducible zip or tar.gz named by its content digest and
caches it per process; ``extract_bundle`` verifies and unpacks one safely.
See docs/bundle.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Loaded on first use: DAG parsing imports bundle.user_code (the project root), and must not pay
# for the archive writer, tarfile and pathspec that only a running task needs.
_LAZY = {
    "BundleDigestError": "extract",
    "BundleError": "extract",
    "CacheInfo": "cache",
    "CodeBundle": "build",
    "DEFAULT_MAX_BYTES": "build",
    "FORMATS": "build",
    "MAX_BYTES_SETTING": "build",
    "SECRET_DIR_NAMES": "ignore",
    "SECRET_FILE_PATTERNS": "ignore",
    "STANDARD_IGNORE_PATTERNS": "ignore",
    "Selection": "ignore",
    "SourceFile": "ignore",
    "UnsafeBundleError": "extract",
    "build_bundle": "build",
    "bundle_digest": "build",
    "cache_dir": "cache",
    "cache_info": "cache",
    "clear_cache": "cache",
    "extract_bundle": "extract",
    "is_secret": "ignore",
    "resolve_max_bytes": "build",
    "select_files": "ignore",
}

if TYPE_CHECKING:
    from airflow_provider_flyte.bundle.build import (
        DEFAULT_MAX_BYTES,
        FORMATS,
        MAX_BYTES_SETTING,
        CodeBundle,
        build_bundle,
        bundle_digest,
        resolve_max_bytes,
    )
    from airflow_provider_flyte.bundle.cache import CacheInfo, cache_dir, cache_info, clear_cache
    from airflow_provider_flyte.bundle.extract import (
        BundleDigestError,
        BundleError,
        UnsafeBundleError,
        extract_bundle,
    )
    from airflow_provider_flyte.bundle.ignore import (
        SECRET_DIR_NAMES,
        SECRET_FILE_PATTERNS,
        STANDARD_IGNORE_PATTERNS,
        Selection,
        SourceFile,
        is_secret,
        select_files,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMATS",
    "MAX_BYTES_SETTING",
    "SECRET_DIR_NAMES",
    "SECRET_FILE_PATTERNS",
    "STANDARD_IGNORE_PATTERNS",
    "BundleDigestError",
    "BundleError",
    "CacheInfo",
    "CodeBundle",
    "Selection",
    "SourceFile",
    "UnsafeBundleError",
    "build_bundle",
    "bundle_digest",
    "cache_dir",
    "cache_info",
    "clear_cache",
    "extract_bundle",
    "is_secret",
    "resolve_max_bytes",
    "select_files",
]
