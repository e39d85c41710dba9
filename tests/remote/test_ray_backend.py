"""The ray backend on an in-process Ray cluster, if Ray can be kept on loopback."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path

import pytest
from gateway_harness import TOKEN, b64, make_config, python_spec, serve_in_thread

from remote_exec.execution import ExecutionClient

ray = pytest.importorskip("ray")

LOOPBACK = {"127.0.0.1", "::1"}


def _ray_listeners() -> list[str]:
    """`ss` lines of listening TCP sockets owned by this process or its descendants."""
    ps = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True)
    parents = dict(line.split() for line in ps.stdout.splitlines())  # pid -> ppid
    ours = {str(os.getpid())}
    while grown := {pid for pid, ppid in parents.items() if ppid in ours} - ours:
        ours |= grown
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if any(f"pid={p}," in line for p in ours)]


def _host(line: str) -> str:
    local = line.split()[3]
    return local.rsplit(":", 1)[0].strip("[]").split("%")[0]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        exposed = [line for line in _ray_listeners() if not _is_loopback(_host(line))]
        if exposed:
            print("Ray sockets not on loopback:\n" + "\n".join(exposed))
            pytest.skip(
                "Ray listens beyond loopback here (tests stay on 127.0.0.1): "
                + "; ".join(" ".join(line.split()[3::2]) for line in exposed)
            )
        yield
    finally:
        ray.shutdown()


def test_a_job_runs_as_a_ray_task(ray_cluster, tmp_path: Path) -> None:
    from remote_exec.gateway.backends.ray_backend import RayBackend

    backend = RayBackend(max_concurrency=2)
    script = "import pathlib\nprint('on ray')\npathlib.Path('out.txt').write_text('ray')\n"
    spec = python_spec(script, artifacts=["out.txt"])
    with serve_in_thread(make_config(tmp_path), backend) as url, ExecutionClient(url, TOKEN) as c:
        assert c.health()["backend"] == "ray"
        job = c.submit("ray-job", spec)
        logs = "".join(c.logs(job.id))
        job = c.wait(job.id, deadline_s=60, poll_s=0.05)
        assert job.state == "succeeded", job
        assert "on ray" in logs
        assert job.artifacts == {"out.txt": b64("ray")}

        sleeper = c.submit("ray-cancel", python_spec("import time; time.sleep(300)", timeout_s=600))
        while c.get(sleeper.id).state != "running":
            pass
        c.cancel(sleeper.id)
        assert c.wait(sleeper.id, deadline_s=60, poll_s=0.05).state == "cancelled"
