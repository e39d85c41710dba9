"""Bundles in and artifacts out of a job directory, trusting none of the paths.

A bundle comes from a client (or, on the gateway, from the network) and artifacts are files the
untrusted job itself wrote, so every path is checked by name and then walked one directory at a
time with ``O_NOFOLLOW``: a symlink planted anywhere on the way is refused, never followed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

MiB = 1024 * 1024

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class BundleError(ValueError):
    """A bundle or artifact path or size that is refused; the message says which and why."""


def normalise(path: object) -> str:
    """The canonical relative POSIX form of ``path``, or BundleError if it could escape."""
    if not isinstance(path, str) or not path:
        raise BundleError(f"path {path!r}: must be a non-empty string")
    if "\0" in path:
        raise BundleError(f"path {path!r}: contains NUL")
    if "\\" in path:
        raise BundleError(f"path {path!r}: contains a backslash (use '/')")
    if path.startswith("/"):
        raise BundleError(f"path {path!r}: must be relative")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BundleError(f"path {path!r}: contains '..'")
    if not parts:
        raise BundleError(f"path {path!r}: names no file")
    return "/".join(parts)


@contextlib.contextmanager
def _open_dir(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def _walk_parents(job_dir: Path, rel: str, *, create: bool) -> int:
    """An fd of the directory holding ``rel``, each step a real directory (no symlinks)."""
    fd = os.open(job_dir, _DIR_FLAGS)
    try:
        for part in rel.split("/")[:-1]:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _decode(files: dict[str, str], max_files: int, max_bytes: int) -> dict[str, bytes]:
    if len(files) > max_files:
        raise BundleError(f"bundle has {len(files)} files; the limit is {max_files}")
    out: dict[str, bytes] = {}
    total = 0
    for name, content in files.items():
        rel = normalise(name)
        if rel in out:
            raise BundleError(f"path {name!r}: duplicates {rel!r}")
        if not isinstance(content, str):
            raise BundleError(f"path {name!r}: content must be a base64 string")
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError) as e:
            raise BundleError(f"path {name!r}: invalid base64 ({e})") from None
        total += len(data)
        if total > max_bytes:
            raise BundleError(f"bundle exceeds {max_bytes} bytes")
        out[rel] = data
    return out


def write_bundle(
    files: dict[str, str], job_dir: Path, *, max_files: int = 2000, max_bytes: int = 50 * MiB
) -> None:
    """Write relative path -> base64 content under ``job_dir`` (an existing directory).

    Everything is checked before the first byte is written, so a refused bundle leaves nothing.
    """
    decoded = _decode(files, max_files, max_bytes)
    for rel, data in decoded.items():
        try:
            with _open_dir(_walk_parents(job_dir, rel, create=True)) as parent:
                name = rel.rsplit("/", 1)[-1]
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
                fd = os.open(name, flags, 0o644, dir_fd=parent)
                with open(fd, "wb") as f:
                    f.write(data)
        except OSError as e:
            raise BundleError(f"path {rel!r}: cannot be written inside the job ({e})") from None


def _read_regular(job_dir: Path, rel: str, limit: int) -> bytes | None:
    """The content of a regular file reached without symlinks; None if absent or not one."""
    try:
        parent = _walk_parents(job_dir, rel, create=False)
    except OSError:
        return None
    with _open_dir(parent):
        try:
            # O_NONBLOCK: a FIFO planted by the job must not hang us; it is skipped below.
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            fd = os.open(rel.rsplit("/", 1)[-1], flags, dir_fd=parent)
        except OSError:
            return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    with open(fd, "rb") as f:
        return f.read(limit + 1)


def collect_artifacts(job_dir: Path, paths: Iterable[str], *, max_bytes: int) -> dict[str, str]:
    """Relative path -> base64 of each artifact that exists as a regular file.

    Missing paths, symlinks and non-regular files are skipped; a total over ``max_bytes`` is a
    BundleError rather than a silent cut.
    """
    out: dict[str, str] = {}
    used = 0
    for path in paths:
        rel = normalise(path)
        data = _read_regular(job_dir, rel, max_bytes - used)
        if data is None:
            continue
        used += len(data)
        if used > max_bytes:
            raise BundleError(f"artifacts exceed {max_bytes} bytes (at {rel!r})")
        out[rel] = base64.b64encode(data).decode("ascii")
    return out
