"""Repositories in: a directory, a git repository at a commit (bare or working tree), an archive, or file rows.

Every source gives a `Repository`: its files (path relative to the repository
root, text, language) and the files it skipped, each with a reason, as the
curation spine does: `vendored` (vendor/third_party/node_modules/dot folders),
`generated` (tamis.filters.code_autogen), `binary` (NUL bytes or not UTF-8),
`oversized` (over `max_bytes`) and `not_code` (no known language). Git is read
with the `git` program (`ls-tree`, `cat-file --batch`): no checkout, no new dependency.
"""

import io
import logging
import os
import re
import subprocess
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from tamis.errors import InputError
from tamis.filters.code_autogen import is_generated
from tamis.filters.code_lang import language_of
from tamis.validation import Params

log = logging.getLogger(__name__)

VENDORED = re.compile(r"(^|/)(_vendor|vendor|vendored|third_party|third-party|node_modules|\.[^/]+)/")
# Languages whose files are code worth indexing (code_lang also names config and markup formats).
DATA_LANGUAGES = frozenset(
    {"JSON", "YAML", "TOML", "XML", "HTML", "CSS", "SCSS", "Markdown", "reStructuredText", "TeX", "Jupyter Notebook"}
)


class IngestConfig(Params):
    """Which files of a repository are kept. `languages`: code_lang names to keep (empty keeps every code language)."""

    max_bytes: int = 1_000_000
    languages: list[str] = []
    skip_generated: bool = True
    skip_vendored: bool = True


@dataclass(frozen=True)
class SourceFile:
    path: str
    text: str
    language: str


@dataclass
class Repository:
    name: str
    commit: str = ""
    files: list[SourceFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def skipped_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, reason in self.skipped:
            counts[reason] = counts.get(reason, 0) + 1
        return dict(sorted(counts.items()))


def classify(path: str, data: bytes, config: IngestConfig) -> tuple[str, str, str]:
    """(text, language, "") for a kept file, or ("", "", reason) for a skipped one."""
    if config.skip_vendored and VENDORED.search(path):
        return "", "", "vendored"
    if len(data) > config.max_bytes:
        return "", "", "oversized"
    if b"\0" in data[:8192]:
        return "", "", "binary"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "", "", "binary"
    language, _ = language_of(path, text)
    if not language or language in DATA_LANGUAGES or (config.languages and language not in config.languages):
        return "", "", "not_code"
    if config.skip_generated and is_generated(path, text):
        return "", "", "generated"
    return text, language, ""


def from_items(name: str, items: Iterable[tuple[str, bytes]], config: IngestConfig, commit: str = "") -> Repository:
    """A Repository from (path, bytes) pairs, sorted by path."""
    repo = Repository(name, commit)
    for path, data in sorted(items, key=lambda it: it[0]):
        text, language, reason = classify(path, data, config)
        if reason:
            repo.skipped.append((path, reason))
        else:
            repo.files.append(SourceFile(path, text, language))
    log.info("%s: %d files kept, skipped %s", name, len(repo.files), repo.skipped_by_reason())
    return repo


def _cheap_skip(path: str, size: int, config: IngestConfig) -> str:
    """The reason to skip a file known from its path and size alone (its bytes are then never read)."""
    if config.skip_vendored and VENDORED.search(path):
        return "vendored"
    if size > config.max_bytes:
        return "oversized"
    return ""


def from_directory(root: str, config: IngestConfig, name: str | None = None) -> Repository:
    """The files under `root` as they are on disk (a git working tree's uncommitted edits included)."""
    if not os.path.isdir(root):
        raise InputError(f"{root} is not a directory.")
    skipped: list[tuple[str, str]] = []

    def items() -> Iterator[tuple[str, bytes]]:
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != ".git")
            for f in sorted(files):
                full = os.path.join(folder, f)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                if os.path.islink(full) or not os.path.isfile(full):
                    continue
                reason = _cheap_skip(rel, os.path.getsize(full), config)
                if reason:
                    skipped.append((rel, reason))
                    continue
                with open(full, "rb") as fh:
                    yield rel, fh.read()

    repo = from_items(name or os.path.basename(os.path.abspath(root)), items(), config)
    repo.skipped = sorted(repo.skipped + skipped)
    return repo


def _is_bare_git(path: str) -> bool:
    return all(os.path.exists(os.path.join(path, p)) for p in ("HEAD", "objects", "refs"))


def _git(gitdir: str, *args: str, data: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", "--git-dir", gitdir, *args], input=data, capture_output=True, check=False)
    except FileNotFoundError as e:
        raise InputError("The git program is not installed.", hint="install git to read git repositories") from e
    if done.returncode != 0:
        raise InputError(f"git {' '.join(args[:2])} failed in {gitdir}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def from_git(path: str, commit: str, config: IngestConfig, name: str | None = None) -> Repository:
    """Files of a git repository (bare, or a working tree's .git) at `commit`, read from its objects."""
    gitdir = path if _is_bare_git(path) and not os.path.isdir(os.path.join(path, ".git")) else os.path.join(path, ".git")
    if not os.path.exists(gitdir):
        raise InputError(f"{path} is not a git repository.")
    sha = _git(gitdir, "rev-parse", "--verify", f"{commit}^{{commit}}").decode().strip()
    blobs, skipped = [], []
    for line in _git(gitdir, "ls-tree", "-r", "-l", "-z", sha).decode("utf-8", "replace").split("\0"):
        if not line:
            continue
        meta, rel = line.split("\t", 1)
        mode, kind, obj, size = meta.split()
        if kind != "blob" or mode == "120000":  # submodules and symlinks are not files of this repository
            continue
        reason = _cheap_skip(rel, int(size) if size.isdigit() else 0, config)
        if reason:
            skipped.append((rel, reason))
        else:
            blobs.append((rel, obj))
    contents = _cat_blobs(gitdir, [obj for _, obj in blobs])
    repo_name = name or os.path.basename(os.path.abspath(path).removesuffix("/.git").removesuffix(".git"))
    repo = from_items(repo_name, zip([p for p, _ in blobs], contents, strict=True), config, commit=sha)
    repo.skipped = sorted(repo.skipped + skipped)
    return repo


def _cat_blobs(gitdir: str, objects: list[str]) -> list[bytes]:
    """Contents of many blobs through one `git cat-file --batch` process."""
    if not objects:
        return []
    out = io.BytesIO(_git(gitdir, "cat-file", "--batch", data="".join(o + "\n" for o in objects).encode()))
    found = []
    for obj in objects:
        header = out.readline().split()
        if len(header) < 3 or header[1] != b"blob":
            raise InputError(f"git cat-file gave no blob for {obj} in {gitdir}")
        found.append(out.read(int(header[2])))
        out.read(1)  # the newline after each object
    return found


def from_archive(path: str, config: IngestConfig, name: str | None = None) -> Repository:
    """A .tar(.gz/.bz2/.xz) or .zip archive; one common top folder (as GitHub's archives have) is removed."""
    items: list[tuple[str, bytes]] = []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.is_dir():
                    items.append((info.filename, None if info.file_size > config.max_bytes else z.read(info)))
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as t:
            for member in t.getmembers():
                if member.isfile():
                    big = member.size > config.max_bytes
                    items.append((member.name, None if big else t.extractfile(member).read()))
    else:
        raise InputError(f"{path} is neither a tar nor a zip archive.")
    items = _strip_top(items)
    big = [(p, "oversized") for p, data in items if data is None]
    repo = from_items(name or _archive_name(path), [(p, d) for p, d in items if d is not None], config)
    repo.skipped = sorted(repo.skipped + big)
    return repo


def _strip_top(items: list[tuple[str, bytes | None]]) -> list[tuple[str, bytes | None]]:
    items = [(p.lstrip("./") if p.startswith("./") else p, d) for p, d in items]
    tops = {p.split("/", 1)[0] for p, _ in items}
    if len(tops) == 1 and all("/" in p for p, _ in items):
        return [(p.split("/", 1)[1], d) for p, d in items]
    return items


def _archive_name(path: str) -> str:
    base = os.path.basename(path)
    for suffix in (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def open_repository(source: str, config: IngestConfig, commit: str = "HEAD", name: str | None = None) -> Repository:
    """A directory (plain, or a git working tree / bare repository, read at `commit`) or an archive file."""
    if os.path.isdir(source):
        if os.path.exists(os.path.join(source, ".git")) or _is_bare_git(source):
            return from_git(source, commit, config, name)
        return from_directory(source, config, name)
    if os.path.isfile(source):
        return from_archive(source, config, name)
    raise InputError(f"Repository {source} does not exist.", hint="give a directory, a git repository or an archive")


def from_rows(rows: Iterable[dict], config: IngestConfig) -> list[Repository]:
    """Repositories from {"repo", "path", "content"} rows (the code-context tasks' repos.jsonl.gz), in name order."""
    grouped: dict[str, list[tuple[str, bytes]]] = {}
    for row in rows:
        grouped.setdefault(row["repo"], []).append((row["path"], row["content"].encode("utf-8")))
    return [from_items(name, items, config) for name, items in sorted(grouped.items())]
