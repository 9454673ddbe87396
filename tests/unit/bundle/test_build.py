"""Code bundle: selection rules, determinism, cache, size limit and safe extraction (pure Python)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest

from airflow_provider_flyte.bundle import (
    BundleDigestError,
    UnsafeBundleError,
    build_bundle,
    bundle_digest,
    cache_dir,
    cache_info,
    clear_cache,
    extract_bundle,
)
from airflow_provider_flyte.exceptions import FlyteConfigError

SECRET_MARK = b"TOP-SECRET-7f3a"


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    directory = cache_dir()
    clear_cache()
    assert not directory.exists()


def write(root: Path, rel: str, content: str | bytes = "x = 1\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    return path


def project(root: Path) -> Path:
    write(root, "dag.py", "from helpers.util import f\n")
    write(root, "helpers/__init__.py", "")
    write(root, "helpers/util.py", "def f():\n    return 42\n")
    write(root, "helpers/data/table.json", '{"a": 1}\n')
    write(root, "nspkg/mod.py", "VALUE = 'ns'\n")  # namespace package: no __init__.py
    return root


def names(archive: Path) -> list[str]:
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            return [n for n in zf.namelist() if not n.endswith("/")]
    with tarfile.open(archive) as tf:
        return [m.name for m in tf.getmembers() if m.isfile()]


# -- determinism ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_same_tree_gives_same_digest_and_bytes(tmp_path: Path, fmt: str) -> None:
    a = project(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b, copy_function=shutil.copyfile)  # new mtimes, default permissions
    for path in b.rglob("*"):
        if path.is_file():
            os.utime(path, (1_000_000, 2_000_000))
            path.chmod(0o600)

    first = build_bundle(a, fmt=fmt)
    first_bytes = first.path.read_bytes()
    clear_cache()
    again = build_bundle(a, fmt=fmt)
    other = build_bundle(b, fmt=fmt)

    assert first.digest == again.digest == other.digest
    assert again.path.read_bytes() == first_bytes
    assert other.path.read_bytes() == first_bytes
    assert first.file_count == 5
    assert names(other.path) == sorted(names(other.path))


def test_digest_does_not_depend_on_format_and_names_the_archive(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    z = build_bundle(root, fmt="zip")
    t = build_bundle(root, fmt="tar.gz")
    assert z.digest == t.digest
    assert z.path.name == f"{z.digest}.zip" and t.path.name == f"{t.digest}.tar.gz"
    files = {rel: hashlib.sha256((root / rel).read_bytes()).digest() for rel in z.files}
    assert bundle_digest(files.items()) == z.digest


def test_changing_one_file_changes_the_digest(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    before = build_bundle(root)
    write(root, "helpers/util.py", "def f():\n    return 43\n")
    after = build_bundle(root)
    assert after.digest != before.digest
    write(root, "helpers/util.py", "def f():\n    return 42\n")
    assert build_bundle(root).digest == before.digest
    (root / "helpers/data/table.json").rename(root / "helpers/data/table2.json")
    assert build_bundle(root).digest != before.digest


def test_zip_bundle_is_importable_with_zipimport(tmp_path: Path) -> None:
    bundle = build_bundle(project(tmp_path / "p"))
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import helpers.util, nspkg.mod; print(helpers.util.f(), nspkg.mod.VALUE, helpers.util.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(bundle.path)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    value, ns, where = out.stdout.split()
    assert (value, ns) == ("42", "ns")
    assert where.startswith(str(bundle.path))


# -- selection ----------------------------------------------------------------------------


def test_secrets_are_excluded_even_when_ignore_files_negate_them(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    secrets = [
        ".env", ".env.local", "id_rsa", "id_ed25519.pub", "keys/server.pem", "tls.key", "airflow.cfg",
        "airflow.db", ".netrc", "cert.p12", ".ssh/config", "sub/.env.prod", "conf/prod.env",
    ]
    for rel in secrets:
        write(root, rel, SECRET_MARK + rel.encode())
    write(root, "id_utils.py", "def new_id():\n    return 1\n")
    write(root, ".gitignore", "!.env\n!*.pem\n!id_rsa\n")
    write(root, ".flyteignore", "!airflow.cfg\n!.env.local\n")

    for fmt in ("zip", "tar.gz"):
        bundle = build_bundle(root, fmt=fmt)
        for rel in secrets:
            assert rel not in bundle.files
        assert "id_utils.py" in bundle.files and "helpers/util.py" in bundle.files
        out = extract_bundle(bundle.path, tmp_path / f"out-{fmt}", expected_digest=bundle.digest)
        for path in out.rglob("*"):
            if path.is_file():
                assert SECRET_MARK not in path.read_bytes(), path


def test_gitignore_flyteignore_and_standard_ignores(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    for rel in [
        "data/big.csv", "report.csv", "keep.csv", "notebooks/n.ipynb", "scratch.py", "sub/scratch.py",
        "sub/local.txt", "sub/other.txt", "__pycache__/dag.cpython-311.pyc", "helpers/util.pyc",
        ".git/config", "venv/lib.py", ".venv/lib.py", "run.log", ".python_history", "dist/x.whl",
        "pkg.egg-info/PKG-INFO", ".pytest_cache/v", ".mypy_cache/v", ".ruff_cache/v", "old.tar.gz",
        "build/lib/x.py",
    ]:
        write(root, rel)
    write(root, ".gitignore", "data/\n*.csv\n!keep.csv\n")
    write(root, ".flyteignore", "notebooks/\n/scratch.py\n")
    write(root, "sub/.gitignore", "local.txt\n")

    files = set(build_bundle(root).files)

    assert {"keep.csv", "sub/scratch.py", "sub/other.txt", "helpers/util.py", "dag.py"} <= files
    assert not any(f.startswith(("data/", "notebooks/", "__pycache__/", ".git/", "venv/", ".venv/")) for f in files)
    assert not {"report.csv", "scratch.py", "sub/local.txt", "helpers/util.pyc", "run.log"} & files
    assert not {".python_history", "dist/x.whl", "pkg.egg-info/PKG-INFO", "old.tar.gz", "build/lib/x.py"} & files
    assert not any("_cache/" in f for f in files)


def test_flyteignore_can_re_include_a_standard_ignore(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    write(root, "build/gen.py")
    write(root, ".flyteignore", "!build/\n")
    assert "build/gen.py" in build_bundle(root).files


def test_airflowignore_glob_is_applied(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    write(root, "legacy_dags/old.py")
    write(root, "etl_old.py")
    write(root, "sub/deep_old.py")
    write(root, "sub/kept.py")
    write(root, ".airflowignore", "legacy_dags/  # parsed by nobody\n*_old.py\n")

    files = set(build_bundle(root, airflowignore_syntax="glob").files)
    assert "sub/kept.py" in files
    assert not {"legacy_dags/old.py", "etl_old.py", "sub/deep_old.py"} & files
    assert "etl_old.py" in build_bundle(root, airflowignore=False).files


def test_airflowignore_uses_the_configured_syntax(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path / "p")
    write(root, "legacy_a.py")
    write(root, "tmp/x.py")
    write(root, "keep_legacy.py")
    write(root, ".airflowignore", "^legacy_.*\n^tmp\n")

    monkeypatch.setenv("AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX", "regexp")
    files = set(build_bundle(root).files)
    assert "keep_legacy.py" in files
    assert not {"legacy_a.py", "tmp/x.py"} & files

    monkeypatch.setenv("AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX", "glob")  # the same lines as globs
    files = set(build_bundle(root).files)
    assert {"legacy_a.py", "tmp/x.py"} <= files


def test_include_limits_the_bundle(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    write(root, "helpers/__pycache__/util.cpython-311.pyc")
    bundle = build_bundle(root, include=["helpers", "dag.py"])
    assert bundle.files == ("dag.py", "helpers/__init__.py", "helpers/data/table.json", "helpers/util.py")
    with pytest.raises(FlyteConfigError, match="outside the bundle root"):
        build_bundle(root, include=["../elsewhere"])
    with pytest.raises(FlyteConfigError, match="no such file"):
        build_bundle(root, include=["missing.py"])


def test_symlink_out_of_the_root_is_not_followed(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    outside = write(tmp_path / "outside", "creds.txt", SECRET_MARK)
    (root / "creds_link.txt").symlink_to(outside)
    (root / "outside_dir").symlink_to(outside.parent, target_is_directory=True)
    (root / "relative_escape.txt").symlink_to(Path("..") / "outside" / "creds.txt")
    (root / "util_link.py").symlink_to(root / "helpers" / "util.py")  # inside: stored as a file
    (root / "env_link.txt").symlink_to(write(root, ".env", SECRET_MARK))  # inside, but a secret

    bundle = build_bundle(root)

    assert not {"creds_link.txt", "relative_escape.txt", "env_link.txt"} & set(bundle.files)
    assert not any(f.startswith("outside_dir") for f in bundle.files)
    out = extract_bundle(bundle.path, tmp_path / "out", expected_digest=bundle.digest)
    assert (out / "util_link.py").read_text() == (root / "helpers/util.py").read_text()
    assert not (out / "util_link.py").is_symlink()
    for path in out.rglob("*"):
        assert not path.is_symlink()
        if path.is_file():
            assert SECRET_MARK not in path.read_bytes()


# -- cache --------------------------------------------------------------------------------


def test_unchanged_tree_is_not_rebuilt_and_a_change_is_noticed(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    first = build_bundle(root)
    st = first.path.stat()
    info = cache_info()

    second = build_bundle(root)
    assert second is first
    assert cache_info() == info._replace(hits=info.hits + 1)
    assert (first.path.stat().st_ino, first.path.stat().st_mtime_ns) == (st.st_ino, st.st_mtime_ns)

    # touching a file: the tree is read again, the content (and archive) stay the same
    util = root / "helpers/util.py"
    os.utime(util, ns=(st.st_mtime_ns + 10**9, st.st_mtime_ns + 10**9))
    touched = build_bundle(root)
    assert touched.digest == first.digest
    assert cache_info().misses == info.misses + 1 and cache_info().writes == info.writes

    # same size, mtime put back: still noticed while the mtime is recent ("racy" files are re-hashed)
    old = util.stat()
    util.write_text(util.read_text().replace("42", "24"))
    os.utime(util, ns=(old.st_atime_ns, old.st_mtime_ns))
    changed = build_bundle(root)
    assert changed.digest != first.digest
    assert cache_info().writes == info.writes + 1

    # a vanished archive is rebuilt
    changed.path.unlink()
    rebuilt = build_bundle(root)
    assert rebuilt.path.is_file() and rebuilt.digest == changed.digest


def test_cache_folder_is_removed_at_interpreter_exit(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    code = (
        "import sys; from airflow_provider_flyte.bundle import build_bundle; "
        "print(build_bundle(sys.argv[1]).path.parent)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    folder = Path(out.stdout.strip().splitlines()[-1])
    assert folder.name.startswith("flyte-bundles-") and not folder.exists()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_forked_child_uses_its_own_cache_folder(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    parent = build_bundle(root)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: build, report, clean up its own folder, leave without atexit
        try:
            child = build_bundle(root)
            os.write(write_end, f"{child.path}\n{child.digest}".encode())
            clear_cache()
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as fh:
        child_path, child_digest = fh.read().split("\n")
    os.waitpid(pid, 0)
    assert child_digest == parent.digest
    assert Path(child_path).parent != parent.path.parent
    assert parent.path.is_file()  # the child did not remove the parent's folder
    assert not Path(child_path).exists()


# -- size limit ---------------------------------------------------------------------------


def test_size_limit_names_the_largest_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path / "p")
    sizes = {"data/a.bin": 9000, "data/b.bin": 8000, "c.bin": 7000, "d.bin": 6000, "e.bin": 5000, "f.bin": 4000}
    for rel, size in sizes.items():
        write(root, rel, b"\0" * size)

    with pytest.raises(FlyteConfigError) as err:
        build_bundle(root, max_bytes=20_000)
    message = str(err.value)
    for rel in ["data/a.bin", "data/b.bin", "c.bin", "d.bin", "e.bin"]:
        assert rel in message
    assert "f.bin" not in message
    assert "8.8 KiB" in message and "20000 bytes" in message
    assert ".flyteignore" in message and "AIRFLOW__FLYTE__BUNDLE_MAX_BYTES" in message

    monkeypatch.setenv("AIRFLOW__FLYTE__BUNDLE_MAX_BYTES", "30000")
    with pytest.raises(FlyteConfigError, match="over the limit"):
        build_bundle(root)
    write(root, ".flyteignore", "*.bin\n")
    assert build_bundle(root).file_count == 6
    monkeypatch.setenv("AIRFLOW__FLYTE__BUNDLE_MAX_BYTES", "lots")
    with pytest.raises(FlyteConfigError, match="bundle_max_bytes"):
        build_bundle(root)


def test_bad_arguments_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(FlyteConfigError, match="not an existing directory"):
        build_bundle(tmp_path / "nope")
    with pytest.raises(FlyteConfigError, match="unsupported archive format"):
        build_bundle(tmp_path, fmt="rar")
    with pytest.raises(FlyteConfigError, match="positive"):
        build_bundle(tmp_path, max_bytes=0)


# -- extraction ---------------------------------------------------------------------------


def crafted(tmp_path: Path, fmt: str, entries: list[tuple[str, bytes]], *, link: tuple[str, str, bytes] | None = None
            ) -> Path:
    """An archive with arbitrary entry names; ``link`` = (name, target, tar type)."""
    path = tmp_path / f"crafted.{fmt}"
    if fmt == "zip":
        with zipfile.ZipFile(path, "w") as zf, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate names are the point of some tests
            for name, data in entries:
                zf.writestr(zipfile.ZipInfo(name), data)
            if link:
                info = zipfile.ZipInfo(link[0])
                info.create_system = 3
                info.external_attr = 0o120777 << 16
                zf.writestr(info, link[1])
    else:
        with tarfile.open(path, "w:gz") as tf:
            for name, data in entries:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            if link:
                info = tarfile.TarInfo(link[0])
                info.type, info.linkname = link[2], link[1]
                tf.addfile(info)
    return path


def digest_of(entries: list[tuple[str, bytes]]) -> str:
    return bundle_digest((n, hashlib.sha256(d).digest()) for n, d in entries)


def assert_nothing_written(tmp_path: Path, target: Path) -> None:
    assert not target.exists()
    assert not list(target.parent.glob(f".{target.name}.partial-*"))
    assert not (tmp_path / "evil.py").exists() and not (tmp_path.parent / "evil.py").exists()


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
@pytest.mark.parametrize("bad", ["../evil.py", "ok/../../evil.py", "/tmp/evil-abs.py"])
def test_unsafe_paths_are_rejected(tmp_path: Path, fmt: str, bad: str) -> None:
    entries = [("a.py", b"x = 1\n"), (bad, b"import os\n")]
    archive = crafted(tmp_path, fmt, entries)
    target = tmp_path / "work" / "out"
    with pytest.raises(UnsafeBundleError, match=r"'\.\.'|absolute"):
        extract_bundle(archive, target, expected_digest=digest_of(entries))
    assert_nothing_written(tmp_path, target)
    assert not Path("/tmp/evil-abs.py").exists()


@pytest.mark.parametrize(
    ("link_type", "linkname", "pattern"),
    [
        (tarfile.SYMTYPE, "../../outside", "symlink .* points outside the target"),
        (tarfile.SYMTYPE, "/etc/passwd", "symlink .* points outside the target"),
        (tarfile.LNKTYPE, "../outside", "hard link .* points outside the target"),
        (tarfile.SYMTYPE, "a.py", "symlink .* regular files only"),
    ],
)
def test_tar_links_are_rejected(tmp_path: Path, link_type: bytes, linkname: str, pattern: str) -> None:
    entries = [("a.py", b"x = 1\n")]
    archive = crafted(tmp_path, "tar.gz", entries, link=("link", linkname, link_type))
    target = tmp_path / "out"
    with pytest.raises(UnsafeBundleError, match=pattern):
        extract_bundle(archive, target, expected_digest=digest_of(entries))
    assert_nothing_written(tmp_path, target)


def test_zip_symlink_entries_are_rejected(tmp_path: Path) -> None:
    entries = [("a.py", b"x = 1\n")]
    archive = crafted(tmp_path, "zip", entries, link=("link", "../../etc/passwd", b""))
    target = tmp_path / "out"
    with pytest.raises(UnsafeBundleError, match="symlink"):
        extract_bundle(archive, target, expected_digest=digest_of(entries))
    assert_nothing_written(tmp_path, target)


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_duplicate_entries_are_rejected(tmp_path: Path, fmt: str) -> None:
    entries = [("a.py", b"x = 1\n"), ("a.py", b"x = 2\n")]
    with pytest.raises(UnsafeBundleError, match="more than once"):
        extract_bundle(crafted(tmp_path, fmt, entries), tmp_path / "out", expected_digest="0" * 64)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_extraction_verifies_the_digest_first(tmp_path: Path, fmt: str) -> None:
    root = project(tmp_path / "p")
    bundle = build_bundle(root, fmt=fmt)
    target = tmp_path / "out"
    with pytest.raises(BundleDigestError, match="does not match"):
        extract_bundle(bundle.path, target, expected_digest="0" * 64)
    assert_nothing_written(tmp_path, target)

    tampered = crafted(tmp_path, fmt, [("dag.py", b"import evil\n")])
    with pytest.raises(BundleDigestError):
        extract_bundle(tampered, target, expected_digest=bundle.digest)
    assert_nothing_written(tmp_path, target)

    out = extract_bundle(bundle.path, target, expected_digest=bundle.digest)
    extracted = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert extracted == list(bundle.files)
    for rel in bundle.files:
        assert (out / rel).read_bytes() == (root / rel).read_bytes()
    with pytest.raises(FileExistsError):
        extract_bundle(bundle.path, target, expected_digest=bundle.digest)


@pytest.mark.parametrize(
    ("entries", "pattern"),
    [
        ([("C:/evil.py", b"1")], "absolute"),
        ([("a/./b.py", b"1")], "not a normalized"),
        ([("a", b"1"), ("a/b.py", b"2")], "both a file and a folder"),
    ],
)
def test_other_malformed_names_are_rejected(tmp_path: Path, entries: list[tuple[str, bytes]], pattern: str) -> None:
    for fmt in ("zip", "tar.gz"):
        target = tmp_path / f"out-{fmt}"
        with pytest.raises(UnsafeBundleError, match=pattern):
            extract_bundle(crafted(tmp_path, fmt, entries), target, expected_digest=digest_of(entries))
        assert_nothing_written(tmp_path, target)


def test_a_killed_process_cache_folder_is_removed_by_the_next_builder(tmp_path: Path) -> None:
    """atexit does not run under SIGKILL (or os._exit in a forked task): the next builder sweeps."""
    root = project(tmp_path / "p")
    code = (
        "import os, signal, sys; from airflow_provider_flyte.bundle import build_bundle; "
        "print(build_bundle(sys.argv[1]).path.parent, flush=True); os.kill(os.getpid(), signal.SIGKILL)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=120)
    assert out.returncode == -signal.SIGKILL, out.stderr
    orphan = Path(out.stdout.strip().splitlines()[-1])
    assert orphan.is_dir()  # left behind by the killed process
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        living = orphan.parent / f"flyte-bundles-{alive.pid}-keep"
        living.mkdir()
        code = "import sys; from airflow_provider_flyte.bundle import build_bundle; build_bundle(sys.argv[1])"
        done = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert not orphan.exists()
        assert living.is_dir()  # a running process's folder is kept
    finally:
        alive.kill()
        alive.wait()
        shutil.rmtree(orphan.parent / f"flyte-bundles-{alive.pid}-keep", ignore_errors=True)
