"""The ray backend on a real two-node Ray cluster, inside a private network namespace.

Ray binds some of its ports to every interface. Inside bubblewrap's `--unshare-net` the only
interface is a fresh loopback (bubblewrap brings it up), so every socket Ray opens is reachable
from inside the namespace alone: the test keeps to 127.0.0.1 whatever Ray binds. bubblewrap
rather than `unshare --net --map-root-user`: that maps only root, so the jobs' sandbox, which
runs them as pool uids when it is root, could not hand them their files (EINVAL); bubblewrap
keeps the caller's uid (and needs no privilege). The body runs in `ray_netns_child.py`; this
test asserts on what it saw.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gateway_harness import b64

from remote_exec.gateway.backends.ray_backend import RayBackend
from remote_exec.jobs import ExecSpec, Resources

pytest.importorskip("ray")

HERE = Path(__file__).resolve().parent
NETNS = ["bwrap", "--dev-bind", "/", "/", "--unshare-net", "--die-with-parent", "--"]


def _namespace_problem() -> str | None:
    if shutil.which("bwrap") is None:
        return "needs bubblewrap (apt-get install bubblewrap) for a private network namespace"
    probe = subprocess.run([*NETNS, "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return (
            "bubblewrap cannot make a private network namespace here (user namespaces "
            f"disabled?): {probe.stderr.strip()}"
        )
    return None


@pytest.fixture(scope="module")
def ray_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if (problem := _namespace_problem()) is not None:
        pytest.skip(problem)
    state = tmp_path_factory.mktemp("ray")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    done = subprocess.run(
        [*NETNS, sys.executable, str(HERE / "ray_netns_child.py"), str(state)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    report_file = state / "report.json"
    assert report_file.exists(), done.stderr[-4000:]
    report = json.loads(report_file.read_text())
    assert "error" not in report, report.get("traceback")
    print(json.dumps({k: report[k] for k in ("interfaces", "cluster", "listening")}, indent=1))
    return report


def test_ray_runs_in_a_namespace_whose_only_interface_is_loopback(ray_run: dict) -> None:
    assert ray_run["interfaces"] == ["lo"]
    assert ray_run["cluster"]["GPU"] == 1 and ray_run["cluster"]["h100"] == 1
    assert ray_run["cluster"]["CPU"] == 4  # a head and a second node
    assert ray_run["health"]["backend"] == "ray"
    assert ray_run["health"]["capacity"]["gpus"] == 1


def test_a_job_runs_as_a_ray_task_with_streamed_logs_and_artifacts(ray_run: dict) -> None:
    cpu = ray_run["cpu_job"]
    assert cpu["state"] == "succeeded" and "on ray" in cpu["logs"] and cpu["artifact_ok"]


def test_a_gpu_job_holds_a_gpu_and_the_custom_resource_while_it_runs(ray_run: dict) -> None:
    assert ray_run["gpu_held_while_running"] == {"GPU": 0.0, "h100": 0.0}
    assert ray_run["gpu_state_before_kill"] == "running"


def test_a_job_whose_worker_node_dies_is_retried_and_succeeds(ray_run: dict) -> None:
    gpu = ray_run["gpu_job"]
    assert ray_run["gpu_state_after_kill"] == "running"  # not failed: Ray retries it
    assert gpu["state"] == "succeeded", gpu["stderr_tail"]
    first = gpu["first_output"].split()[1]
    last = gpu["stdout_tail"].split()[1]
    assert first != last, "the result should come from a second attempt"
    assert "[gantry] attempt 1 lost its Ray worker or node" in gpu["log"]
    assert sum(line.startswith("attempt ") for line in gpu["log"].splitlines()) == 2


def test_cancelling_a_running_ray_job_stops_it(ray_run: dict) -> None:
    assert ray_run["cancelled"] == "cancelled"


def test_job_resources_map_to_ray_task_options() -> None:
    backend = RayBackend.__new__(RayBackend)  # the mapping needs no cluster
    backend._gpu_resource = "h100"
    spec = ExecSpec(files={"a": b64("x")}, argv=["true"], resources=Resources(2, 3, 512))
    assert backend.resources_for(spec) == {
        "num_cpus": 3,
        "num_gpus": 2,
        "memory": 512 * 2**20,
        "resources": {"h100": 2},
    }
    backend._gpu_resource = None
    cpu_only = ExecSpec(files={}, argv=["true"], resources=Resources(0, 1, 256))
    assert "resources" not in backend.resources_for(cpu_only)
