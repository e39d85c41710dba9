"""Bundles and artifacts: no path, symlink or size gets anything outside the job directory."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from remote_exec.bundle import BundleError, collect_artifacts, write_bundle


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def job(tmp_path: Path) -> Path:
    d = tmp_path / "job"
    d.mkdir()
    return d


def test_writes_nested_files(job: Path) -> None:
    write_bundle(
        {"a.py": b64(b"x = 1\n"), "pkg/sub/b.txt": b64(b"\x00\xff"), "./c//d": b64(b"")}, job
    )
    assert (job / "a.py").read_bytes() == b"x = 1\n"
    assert (job / "pkg/sub/b.txt").read_bytes() == b"\x00\xff"
    assert (job / "c/d").read_bytes() == b""


@pytest.mark.parametrize(
    "name",
    ["../evil", "a/../../evil", "/etc/evil", "a\\..\\evil", "a\0b", "", ".", "a/..", "./"],
)
def test_refuses_escaping_names(job: Path, name: str) -> None:
    with pytest.raises(BundleError):
        write_bundle({name: b64(b"x")}, job)
    assert list(job.iterdir()) == []


def test_refuses_duplicates_after_normalisation(job: Path) -> None:
    with pytest.raises(BundleError, match="duplicates"):
        write_bundle({"a/b": b64(b"1"), "a//./b": b64(b"2")}, job)


def test_refuses_a_planted_symlink_parent(job: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (job / "link").symlink_to(outside)
    with pytest.raises(BundleError, match="inside the job"):
        write_bundle({"link/pwned": b64(b"x")}, job)
    assert list(outside.iterdir()) == []


def test_refuses_a_planted_symlink_file(job: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep")
    (job / "f").symlink_to(target)
    with pytest.raises(BundleError):
        write_bundle({"f": b64(b"overwritten")}, job)
    assert target.read_text() == "keep"


def test_refuses_invalid_base64(job: Path) -> None:
    with pytest.raises(BundleError, match="base64"):
        write_bundle({"a": "not base64!"}, job)


def test_limits(job: Path) -> None:
    with pytest.raises(BundleError, match="files"):
        write_bundle({f"f{i}": b64(b"") for i in range(3)}, job, max_files=2)
    with pytest.raises(BundleError, match="bytes"):
        write_bundle({"a": b64(b"x" * 6), "b": b64(b"x" * 6)}, job, max_bytes=10)
    assert list(job.iterdir()) == []  # nothing written before the check


def test_collect_artifacts(job: Path, tmp_path: Path) -> None:
    (job / "out").mkdir()
    (job / "out/junit.xml").write_bytes(b"<xml/>")
    secret = tmp_path / "secret"
    secret.write_text("host secret")
    (job / "leak").symlink_to(secret)
    (job / "dirlink").symlink_to(tmp_path)
    os.mkfifo(job / "fifo")
    got = collect_artifacts(
        job,
        ["out/junit.xml", "missing.json", "leak", "dirlink/secret", "fifo", "out"],
        max_bytes=100,
    )
    assert got == {"out/junit.xml": b64(b"<xml/>")}


def test_collect_artifacts_limits_and_names(job: Path) -> None:
    (job / "big").write_bytes(b"x" * 11)
    with pytest.raises(BundleError, match="exceed"):
        collect_artifacts(job, ["big"], max_bytes=10)
    with pytest.raises(BundleError):
        collect_artifacts(job, ["../etc/passwd"], max_bytes=10)
