"""Which files of a project root go into a code bundle.

Rules, in order (see docs/bundle.md):

1. ``STANDARD_IGNORE_PATTERNS`` plus every ``.gitignore`` and ``.flyteignore`` (gitignore
   syntax via :mod:`pathspec`; a deeper file and a later line win; ``!`` re-includes).
2. Every ``.airflowignore``, in the syntax Airflow uses (``[core] dag_ignore_file_syntax``,
   ``glob`` or ``regexp``), evaluated on its own, as the DAG processor does.
3. Secrets (``SECRET_FILE_PATTERNS``, ``SECRET_DIR_NAMES``, and JSON files whose content is a
   credential: a cloud service-account key, a Docker ``config.json`` with ``auths``): excluded
   whatever 1 and 2 say; the build logs a warning naming each one.

Symlinks: a link to a file inside the root is stored as a regular file holding the
target's content (when both the link and the target pass the rules); links to
directories, links leaving the root and broken links are not followed.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pathspec import GitIgnoreSpec

from airflow_provider_flyte.exceptions import FlyteConfigError

log = logging.getLogger(__name__)

#: Ignored unless a user ignore file re-includes them with ``!``.
STANDARD_IGNORE_PATTERNS: tuple[str, ...] = (
    ".git/", ".hg/", ".svn/",
    "__pycache__/", "*.pyc", "*.pyo",
    ".venv/", "venv/", ".env",
    "*.egg-info/", ".eggs/", "dist/", "build/", "*.whl", "*.tar.gz",
    ".cache/", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", ".hypothesis/",
    ".tox/", ".nox/", ".ipynb_checkpoints/", ".coverage", "htmlcov/",
    ".idea/", ".vscode/", ".DS_Store",
    "*.log", ".python_history",
)

#: File-name patterns (gitignore syntax, matched on the name) that are never bundled.
SECRET_FILE_PATTERNS: tuple[str, ...] = (
    ".env*", "*.env",  # .env, .env.local, .envrc, prod.env ...
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ppk", "*.kdbx",
    "id_*",  # SSH keys: id_rsa, id_ed25519, id_ecdsa_sk, id_github ...
    "!id_*.py",  # ... but not Python modules such as id_utils.py
    ".netrc", "_netrc", ".pgpass", ".htpasswd", ".git-credentials", ".pypirc", ".npmrc",
    ".boto", "client_secret*.json",
    "airflow.cfg", "webserver_config.py", "simple_auth_manager_passwords.json*",
    "*.db", "*.sqlite", "*.sqlite3",
    # SQLite's write-ahead log, shared memory and rollback journal hold the database's rows too
    "*.db-wal", "*.db-shm", "*.db-journal", "*.sqlite*-wal", "*.sqlite*-shm", "*.sqlite*-journal",
    "kubeconfig", "*.kubeconfig",  # Kubernetes credentials
    "*-sa.json", "credentials.json", "application_default_credentials.json",  # cloud service accounts
    "*.p8", "*.keytab",  # Apple/Snowflake private keys, Kerberos keytabs
    ".my.cnf", ".s3cfg", ".vault-token", "token.txt", "secrets.yaml", "secrets.yml",
    "*.tfstate", "*.tfstate.backup",  # Terraform state holds every secret it created
)

#: A JSON file is a credential when its text matches one of these (file name aside): a cloud
#: service-account key (``"type": "service_account"`` with its ``private_key``), a Docker client
#: config with registry logins (``"auths"``).
CREDENTIAL_JSON_MARKERS: tuple[tuple[re.Pattern[str], ...], ...] = (
    (re.compile(r'"type"\s*:\s*"service_account"'), re.compile(r'"private_key"\s*:')),
    (re.compile(r'"auths"\s*:\s*\{'),),
)
#: Larger JSON files are data, not credentials: their content is not read.
CREDENTIAL_JSON_MAX_BYTES = 256 * 1024

#: Directory names that are never bundled (credential stores).
SECRET_DIR_NAMES: frozenset[str] = frozenset({".ssh", ".aws", ".gnupg", ".kube", ".docker", ".azure"})

GIT_IGNORE_FILES: tuple[str, ...] = (".gitignore", ".flyteignore")  # later file wins
AIRFLOW_IGNORE_FILE = ".airflowignore"
AIRFLOW_SYNTAXES = ("glob", "regexp")

_SECRET_SPEC = GitIgnoreSpec.from_lines(SECRET_FILE_PATTERNS)
_COMMENT = re.compile(r"\s*#.*")  # Airflow strips .airflowignore comments this way


@dataclass(frozen=True)
class SourceFile:
    """A file chosen for the bundle: ``rel`` inside the archive, read from ``path``."""

    rel: str
    path: Path
    size: int
    mtime_ns: int


@dataclass
class Selection:
    """The files to bundle, sorted by ``rel``, and what was left out for safety."""

    files: list[SourceFile] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    skipped_links: list[str] = field(default_factory=list)


def is_secret(rel: str, *, is_dir: bool = False) -> bool:
    """Whether ``rel`` (a POSIX path inside the root) is, or lies in, a secret location."""
    parts = rel.strip("/").split("/")
    dirs = parts if is_dir else parts[:-1]
    if any(p in SECRET_DIR_NAMES for p in dirs):
        return True
    return not is_dir and bool(parts[-1]) and bool(_SECRET_SPEC.match_file(parts[-1]))


def holds_credentials(path: Path, size: int) -> bool:
    """Whether the JSON file at ``path`` is, by its content, a credential (:data:`CREDENTIAL_JSON_MARKERS`)."""
    if path.suffix.lower() != ".json" or size > CREDENTIAL_JSON_MAX_BYTES:
        return False
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(all(marker.search(text) for marker in markers) for markers in CREDENTIAL_JSON_MARKERS)


def airflow_ignore_syntax() -> str:
    """``[core] dag_ignore_file_syntax`` of the installed Airflow (``glob`` when unset)."""
    try:
        from airflow.configuration import conf

        value = conf.get("core", "dag_ignore_file_syntax", fallback="glob")
    except Exception:  # no usable Airflow config: Airflow's own default
        value = "glob"
    return (value or "glob").strip().lower()


@dataclass(frozen=True)
class _Layer:
    """Ignore rules defined in one directory (``prefix`` is its path + "/", "" for the root)."""

    prefix: str
    git: GitIgnoreSpec | None
    airflow_glob: GitIgnoreSpec | None
    airflow_regex: tuple[re.Pattern[str], ...]


class _Rules:
    """Ignore layers per directory, loaded lazily and memoised."""

    def __init__(self, root: Path, *, airflowignore: bool, syntax: str) -> None:
        self.root = root
        self.airflowignore = airflowignore
        self.syntax = syntax
        self._layers: dict[str, tuple[_Layer, ...]] = {}

    def layers(self, dir_rel: str) -> tuple[_Layer, ...]:
        """All layers that apply inside directory ``dir_rel`` ("" = root), outermost first."""
        cached = self._layers.get(dir_rel)
        if cached is not None:
            return cached
        parent = () if dir_rel == "" else self.layers(_parent(dir_rel))
        layer = self._load(dir_rel)
        result = parent + ((layer,) if layer is not None else ())
        self._layers[dir_rel] = result
        return result

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether ``rel`` is excluded by the standard, git/flyte or Airflow rules."""
        git: bool | None = None
        airflow: bool | None = None
        for layer in self.layers(_parent(rel)):
            sub = rel[len(layer.prefix):] + ("/" if is_dir else "")
            if layer.git is not None:
                hit = layer.git.check_file(sub).include
                git = hit if hit is not None else git
            if layer.airflow_glob is not None:
                hit = layer.airflow_glob.check_file(sub).include
                airflow = hit if hit is not None else airflow
            if any(p.search(rel) for p in layer.airflow_regex):
                return True
        return bool(git) or bool(airflow)

    def allowed_path(self, rel: str) -> bool:
        """Whether a file at ``rel`` and every directory above it pass all rules."""
        parts = PurePosixPath(rel).parts
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if is_secret(d, is_dir=True) or self.ignored(d, True):
                return False
        return not (self.ignored(rel, False) or is_secret(rel))

    def _load(self, dir_rel: str) -> _Layer | None:
        directory = self.root / dir_rel if dir_rel else self.root
        prefix = f"{dir_rel}/" if dir_rel else ""
        git_lines: list[str] = list(STANDARD_IGNORE_PATTERNS) if dir_rel == "" else []
        for name in GIT_IGNORE_FILES:
            git_lines += _read_lines(directory / name)
        airflow_glob: GitIgnoreSpec | None = None
        regex: list[re.Pattern[str]] = []
        if self.airflowignore:
            path = directory / AIRFLOW_IGNORE_FILE
            lines = [_COMMENT.sub("", line) for line in _read_lines(path)]
            lines = [line for line in lines if line]
            if self.syntax == "regexp":
                regex = [p for p in (_compile_regex(line, path) for line in lines) if p is not None]
            elif lines:
                airflow_glob = _compile_gitignore(lines, path)
        git = _compile_gitignore(git_lines, directory / GIT_IGNORE_FILES[0]) if git_lines else None
        if git is None and airflow_glob is None and not regex:
            return None
        return _Layer(prefix, git, airflow_glob, tuple(regex))


def select_files(
    root: Path,
    include: Sequence[str] = (),
    *,
    airflowignore: bool = True,
    airflowignore_syntax: str | None = None,
) -> Selection:
    """Walk ``root`` (already resolved) and return the files a bundle of it holds.

    :param include: paths relative to ``root`` (or absolute, inside it) that limit the
        bundle to those files/folders; the rules above still apply inside them.
    :param airflowignore: honour ``.airflowignore`` files.
    :param airflowignore_syntax: ``glob`` or ``regexp``; default: Airflow's configured syntax.
    """
    syntax = (airflowignore_syntax or airflow_ignore_syntax()).lower()
    if syntax not in AIRFLOW_SYNTAXES:
        raise FlyteConfigError(
            "[core] dag_ignore_file_syntax", syntax, "unknown .airflowignore syntax",
            'use "glob" or "regexp"',
        )
    rules = _Rules(root, airflowignore=airflowignore, syntax=syntax)
    includes = normalize_include(root, include)
    selection = Selection()
    _walk(root, "", rules, includes, selection)
    selection.files.sort(key=lambda f: f.rel)
    return selection


def normalize_include(root: Path, include: Sequence[str]) -> tuple[str, ...]:
    """``include`` as sorted POSIX paths relative to ``root``; ``()`` means the whole root."""
    if isinstance(include, (str, os.PathLike)):
        include = (os.fspath(include),)
    result: set[str] = set()
    for item in include:
        raw = os.fspath(item)
        candidate = Path(raw) if os.path.isabs(raw) else root / raw
        normalized = Path(os.path.normpath(candidate))
        try:
            rel = normalized.relative_to(root)
        except ValueError:
            raise FlyteConfigError(
                "TaskEnvironment.include", raw, f"the path is outside the bundle root {root}",
                "list files or folders inside the DAG folder (or the configured bundle root)",
            ) from None
        if not os.path.lexists(normalized):
            raise FlyteConfigError(
                "TaskEnvironment.include", raw, f"no such file or folder under {root}",
                "fix the path; relative paths are taken from the bundle root",
            )
        if rel == Path("."):
            return ()
        result.add(rel.as_posix())
    return tuple(sorted(result))


def _walk(directory: Path, prefix: str, rules: _Rules, includes: tuple[str, ...], out: Selection) -> None:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        log.warning("Code bundle: cannot list %s (%s); skipped", directory, exc)
        return
    for entry in entries:
        rel = prefix + entry.name
        if entry.is_symlink():
            if _wanted_file(rel, includes) and not rules.ignored(rel, False) and not is_secret(rel):
                _add_link(entry, rel, rules, out)
        elif entry.is_dir(follow_symlinks=False):
            if not _wanted_dir(rel, includes) or rules.ignored(rel, True):
                continue
            if is_secret(rel, is_dir=True):
                out.secrets.append(rel + "/")
                continue
            _walk(Path(entry.path), rel + "/", rules, includes, out)
        elif entry.is_file(follow_symlinks=False):
            if not _wanted_file(rel, includes) or rules.ignored(rel, False):
                continue
            st = entry.stat(follow_symlinks=False)
            if is_secret(rel) or holds_credentials(Path(entry.path), st.st_size):
                out.secrets.append(rel)
                continue
            out.files.append(SourceFile(rel, Path(entry.path), st.st_size, st.st_mtime_ns))


def _add_link(entry: os.DirEntry[str], rel: str, rules: _Rules, out: Selection) -> None:
    target = Path(os.path.realpath(entry.path))
    try:
        target_rel = target.relative_to(rules.root).as_posix()
    except ValueError:
        out.skipped_links.append(f"{rel} -> {target} (outside the bundle root)")
        return
    if not target.is_file():
        why = "a directory" if target.is_dir() else "broken or not a regular file"
        out.skipped_links.append(f"{rel} -> {target_rel} ({why})")
        return
    st = target.stat()
    if not rules.allowed_path(target_rel) or holds_credentials(target, st.st_size):
        out.skipped_links.append(f"{rel} -> {target_rel} (the target is ignored or secret)")
        return
    out.files.append(SourceFile(rel, target, st.st_size, st.st_mtime_ns))


def _wanted_dir(rel: str, includes: tuple[str, ...]) -> bool:
    return not includes or any(
        inc == rel or inc.startswith(rel + "/") or rel.startswith(inc + "/") for inc in includes
    )


def _wanted_file(rel: str, includes: tuple[str, ...]) -> bool:
    return not includes or any(rel == inc or rel.startswith(inc + "/") for inc in includes)


def _parent(rel: str) -> str:
    return rel.rpartition("/")[0]


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []
    except OSError as exc:
        # Bundling without its patterns could ship what it excludes (data, credentials): refuse.
        raise FlyteConfigError(
            "code bundle ignore file", str(path), f"cannot be read ({type(exc).__name__}: {exc.strerror or exc})",
            "make it readable by the Airflow worker's user (its patterns decide what is left out of the bundle)",
        ) from None
    return text.splitlines()


def _compile_gitignore(lines: list[str], source: Path) -> GitIgnoreSpec | None:
    try:
        return GitIgnoreSpec.from_lines(lines)
    except ValueError:
        good = []
        for line in lines:
            try:
                GitIgnoreSpec.from_lines([line])
            except ValueError:
                log.warning("Code bundle: ignoring invalid pattern %r from %s", line, source)
            else:
                good.append(line)
        return GitIgnoreSpec.from_lines(good) if good else None


def _compile_regex(pattern: str, source: Path) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error as exc:
        log.warning("Code bundle: ignoring invalid regex %r from %s: %s", pattern, source, exc)
        return None
