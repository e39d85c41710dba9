"""What one job may take from the gateway's host: CPUs, memory and disk, and who may read its
journal and job directories. A real gateway on 127.0.0.1 with the local backend."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import attrs
import httpx2
import pytest
from gateway_harness import TOKEN, b64, free_port, make_config, serve_in_thread, spawn_gateway

from remote_exec.execution import ExecutionClient, RemoteJob
from remote_exec.gateway.backends.local import LocalBackend
from remote_exec.jobs import ExecSpec, Resources
from remote_exec.sandbox import Sandbox

HOST_CPUS = len(os.sched_getaffinity(0))
HOST_MEMORY_MB = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
QUOTA_MB = 20

# Writes 8 MiB files into a directory until refused; 40 MiB in all would fit without a quota.
FILL = """
import sys, time
written = 0
try:
    for i in range(5):
        with open(f"{sys.argv[1]}/blob{i}", "wb") as f:
            for _ in range(8):
                f.write(b"x" * 2**20)
                f.flush()
                written += 1
finally:
    print("written", written, flush=True)
    if len(sys.argv) > 2:
        time.sleep(300)
"""


@pytest.fixture
def client(tmp_path: Path):
    """A client of a gateway whose jobs may write QUOTA_MB."""
    config = attrs.evolve(make_config(tmp_path), disk_quota_mb=QUOTA_MB)
    backend = LocalBackend(Sandbox(), config.work_root, 2, gpus=[], disk_mb=QUOTA_MB)
    with serve_in_thread(config, backend) as url, ExecutionClient(url, TOKEN) as client:
        yield client


def _submit(client: ExecutionClient, resources: dict) -> httpx2.Response:
    key = "-".join(f"{name}.{value}" for name, value in sorted(resources.items()))
    body = {"key": key, "files": {}, "argv": ["true"], "resources": resources}
    return httpx2.post(
        f"{client.base_url}/v1/jobs", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )


def _fill(client: ExecutionClient, key: str, directory: str, *, stay: bool = False) -> RemoteJob:
    """A job filling `directory`; with `stay`, it then waits to be cancelled (even if refused)."""
    argv = [sys.executable, "-u", "fill.py", directory, *(["stay"] if stay else [])]
    return client.submit(key, ExecSpec(files={"fill.py": b64(FILL)}, argv=argv, timeout_s=120))


def _until_written(client: ExecutionClient, job: RemoteJob) -> int:
    """How many MiB the job says it wrote, once it has said so."""
    seen = ""
    for text in client.logs(job.id):  # output may arrive in several chunks
        seen += text
        if "written" in seen and seen.endswith("\n"):
            return int(seen.split()[-1])
    raise AssertionError(f"the job ended without writing: {client.get(job.id)}")


# -- CPUs and memory ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "named"),
    [
        ({"memory_mb": max(HOST_MEMORY_MB + 1, 262_144)}, "memory_mb"),
        ({"cpus": HOST_CPUS + 1}, "cpus"),
    ],
)
def test_more_than_the_host_has_is_refused(client, resources: dict, named: str) -> None:
    response = _submit(client, resources)
    assert response.status_code == 400, response.text
    assert f"resources.{named}: this gateway's host has" in response.json()["error"]
    assert _submit(client, {"cpus": HOST_CPUS, "memory_mb": 256}).status_code == 201


def test_the_gateway_may_cap_lower_than_its_host(tmp_path: Path) -> None:
    config = make_config(tmp_path, max_cpus=1, max_memory_mb=256)
    backend = LocalBackend(Sandbox(), config.work_root, 2, gpus=[])
    with serve_in_thread(config, backend) as url, ExecutionClient(url, TOKEN) as client:
        for resources, named in [({"cpus": 2}, "cpus"), ({"memory_mb": 257}, "memory_mb")]:
            response = _submit(client, resources)
            assert response.status_code == 400, response.text
            assert response.json()["error"].startswith(f"resources.{named}: at most")
        assert _submit(client, {"cpus": 1, "memory_mb": 256}).status_code == 201
        assert client.health()["limits"] == {"cpus": 1, "memory_mb": 256, "disk_mb": 1024}


def test_gateway_process_reports_its_caps_and_how_it_enforces_them(tmp_path: Path) -> None:
    """`run_gateway` as `gantry gateway` runs it: its options, its sandbox (cgroups if it may)."""
    port = free_port()
    proc = spawn_gateway(tmp_path, port, max_cpus=1, max_memory_mb=256, disk_quota_mb=QUOTA_MB)
    try:
        with ExecutionClient(f"http://127.0.0.1:{port}", TOKEN) as client:
            health = client.health()
            assert health["limits"] == {"cpus": 1, "memory_mb": 256, "disk_mb": QUOTA_MB}
            enforcement = health["enforcement"]
            assert enforcement["disk"] == "tmpfs"
            assert enforcement["memory"] == enforcement["cpus"] in ("cgroup", "rlimit")
            if enforcement["memory"] == "rlimit":
                assert enforcement["why"] and enforcement["why"] != "not asked for"
            assert _submit(client, {"memory_mb": 512}).status_code == 400
            # Over its memory, a job fails: MemoryError under an rlimit, killed under a cgroup.
            argv = [sys.executable, "-c", "b = b'x' * 2**30"]
            hog = client.submit("hog", ExecSpec({}, argv, resources=Resources(memory_mb=256)))
            hog = client.wait(hog.id, deadline_s=60, poll_s=0.05)
            assert hog.state == "failed", hog
            assert "MemoryError" in hog.stderr_tail or "killed for going over" in hog.stderr_tail
    finally:
        proc.terminate()
        proc.wait(20)


# -- disk ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", [".", "/tmp"])
def test_writing_past_the_disk_quota_fails_the_job(client, directory: str) -> None:
    job = client.wait(_fill(client, f"fill-{directory}", directory).id, deadline_s=60, poll_s=0.05)
    assert job.state == "failed", job
    assert "No space left on device" in job.stderr_tail
    written = int(job.stdout_tail.split()[-1])
    assert 8 <= written <= QUOTA_MB


def _disk_used(top: Path) -> int:
    return sum(
        os.lstat(os.path.join(root, name)).st_blocks * 512
        for root, _, files in os.walk(top)
        for name in files
    )


def test_a_job_cannot_fill_the_hosts_disk(client, tmp_path: Path) -> None:
    job = _fill(client, "fill-and-stay", ".", stay=True)
    assert _until_written(client, job) <= QUOTA_MB
    assert _disk_used(tmp_path) < 4 * 2**20  # the journal and the bundle, not the job's files
    client.cancel(job.id)
    assert client.wait(job.id, deadline_s=30, poll_s=0.05).state == "cancelled"


# -- permissions --------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_journal_and_job_directories_are_private(tmp_path: Path) -> None:
    journal, work = tmp_path / "jobs.sqlite", tmp_path / "work"
    for path in (journal, Path(f"{journal}-wal")):  # left world-readable by an older gateway
        path.touch(mode=0o644)
        path.chmod(0o644)
    work.mkdir(mode=0o755)
    config = make_config(tmp_path)
    backend = LocalBackend(Sandbox(), config.work_root, 2, gpus=[])
    with serve_in_thread(config, backend) as url, ExecutionClient(url, TOKEN) as client:
        job = _fill(client, "private", ".", stay=True)
        _until_written(client, job)
        job_dirs = list(work.iterdir())
        assert job_dirs and all(_mode(d) == 0o700 for d in job_dirs)
        client.cancel(job.id)
        client.wait(job.id, deadline_s=30, poll_s=0.05)
        assert _mode(work) == 0o700
        for suffix in ("", "-wal", "-shm"):
            assert _mode(Path(f"{journal}{suffix}")) == 0o600, suffix
