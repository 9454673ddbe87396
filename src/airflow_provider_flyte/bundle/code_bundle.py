"""What a built code bundle is: the archive on disk and what identifies its content."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CodeBundle:
    """A built bundle: the archive on disk and what identifies its content.

    :param path: the archive, named ``<digest>.zip`` or ``<digest>.tar.gz``.
    :param digest: sha256 hex over the sorted relative paths and file contents.
    :param root: the (resolved) project root the bundle was built from.
    :param file_count: number of files in the archive.
    :param size: size of the archive in bytes.
    :param source_bytes: total size of the bundled files before compression.
    :param format: ``zip`` or ``tar.gz``.
    :param files: the relative paths in the archive, sorted.
    """

    path: Path
    digest: str
    root: Path
    file_count: int
    size: int
    source_bytes: int
    format: str
    files: tuple[str, ...]
