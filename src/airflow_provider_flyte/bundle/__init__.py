"""Code bundles: the user's project as a deterministic archive that workers can import.

Engine-independent. ``build_bundle`` selects files (ignore files, standard ignores,
secrets never), writes a reproducible zip or tar.gz named by its content digest and
caches it per process; ``extract_bundle`` verifies and unpacks one safely.
See docs/bundle.md.
"""

from __future__ import annotations

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
