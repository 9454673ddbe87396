"""The bundle's write-time traversal check (issue 21, "tests that could not fail").

Extraction checks twice: every entry's name before anything is written (``_verify``), and, while
writing, that each entry's folder really resolves inside the staging folder (``_write``). No
archive passes the first check and fails the second (its names are clean), so a test through
``extract_bundle`` never reaches the second one. Here a real archive that passes the first check
meets a staging folder holding a symlink (what a process racing the extraction could plant): only
the write-time check keeps the file from landing outside.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from airflow_provider_flyte.bundle.build import bundle_digest
from airflow_provider_flyte.bundle.extract import UnsafeBundleError, _open_members, _verify, _write


def test_an_entry_whose_folder_resolves_outside_the_target_is_refused_while_writing(tmp_path: Path) -> None:
    import hashlib

    content = b"print('outside')\n"
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/mod.py", content)
    digest = bundle_digest([("pkg/mod.py", hashlib.sha256(content).digest())])
    with _open_members(archive) as members:
        files = _verify(members, archive, digest)  # the first layer accepts the archive
    assert list(files) == ["pkg/mod.py"]

    outside = tmp_path / "outside"
    outside.mkdir()
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "pkg").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeBundleError, match=r"'pkg/mod.py' resolves outside the target"), \
            _open_members(archive) as members:
        _write(members, staging, files)
    assert list(outside.iterdir()) == []
