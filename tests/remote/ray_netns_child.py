"""The Ray test's body, run inside a private network namespace (only `lo`, up), where whatever Ray
binds to, even every interface, can only be reached from inside (see test_ray_backend.py).

    ray_netns_child.py STATE_DIR      (writes STATE_DIR/report.json)

A head node (2 CPUs, no GPU) and a worker node (2 CPUs, 1 GPU, custom resource `h100`), the
gateway's ray backend in front (`gpu_resource="h100"`, retries on worker death), the gateway on
127.0.0.1 in a thread, and a client. What it saw goes to the report; the test asserts on it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from gateway_harness import TOKEN, b64, make_config, python_spec, serve_in_thread

from remote_exec.execution import ExecutionClient
from remote_exec.jobs import Resources

NODE = {"num_cpus": 2, "object_store_memory": 80 * 1024 * 1024}
GPU_NODE = {**NODE, "num_gpus": 1, "resources": {"h100": 1}}
# Each attempt prints a fresh id first, then works for a while: the log keeps what the first
# attempt printed, the result is the last attempt's.
ATTEMPT = "import time, uuid\nprint('attempt', uuid.uuid4().hex, flush=True)\ntime.sleep({s})\n"


def _wait_for(predicate: Any, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def main(state: Path) -> dict[str, Any]:
    import ray
    from ray.cluster_utils import Cluster

    from remote_exec.gateway.backends.ray_backend import RayBackend

    seen: dict[str, Any] = {"interfaces": sorted(name for _, name in socket.if_nameindex())}
    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    worker = cluster.add_node(**GPU_NODE)
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    try:
        seen["cluster"] = {k: v for k, v in ray.cluster_resources().items() if "node" not in k}
        seen["listening"] = subprocess.run(
            ["ss", "-ltnH"], capture_output=True, text=True, check=False
        ).stdout.split("\n")
        backend = RayBackend(max_concurrency=4, gpu_resource="h100", max_retries=2)
        config = make_config(state)
        with serve_in_thread(config, backend) as url, ExecutionClient(url, TOKEN) as c:
            seen["health"] = c.health()

            # A CPU job: output streams, the artifact comes back.
            script = "import pathlib\nprint('on ray')\npathlib.Path('out.txt').write_text('ray')\n"
            job = c.submit("cpu-job", python_spec(script, artifacts=["out.txt"]))
            logs = "".join(c.logs(job.id))
            job = c.wait(job.id, deadline_s=60, poll_s=0.05)
            seen["cpu_job"] = {
                "state": job.state,
                "logs": logs,
                "artifact_ok": job.artifacts == {"out.txt": b64("ray")},
            }

            # A GPU job holds the worker's GPU and its h100 while it runs; the worker node is
            # killed mid-job; Ray runs it again on the node that replaces it.
            gpu_spec = python_spec(ATTEMPT.format(s=4), resources=Resources(gpus=1), timeout_s=60)
            gpu = c.submit("gpu-job", gpu_spec)
            stream = c.logs(gpu.id)
            first_output = ""
            while "\n" not in first_output:  # the first attempt printed its id
                chunk = next(stream, None)
                if chunk is None:
                    raise RuntimeError(f"the GPU job ended before its output: {c.get(gpu.id)}")
                first_output += chunk
            free = ray.available_resources()  # a resource fully taken is left out
            seen["gpu_held_while_running"] = {k: free.get(k, 0.0) for k in ("GPU", "h100")}
            seen["gpu_state_before_kill"] = c.get(gpu.id).state
            cluster.remove_node(worker, allow_graceful=False)
            seen["gpu_state_after_kill"] = c.get(gpu.id).state
            cluster.add_node(**GPU_NODE)
            rest = "".join(stream)
            gpu = c.wait(gpu.id, deadline_s=60, poll_s=0.05)
            seen["gpu_job"] = {
                "state": gpu.state,
                "first_output": first_output,
                "log": first_output + rest,
                "stdout_tail": gpu.stdout_tail,
                "stderr_tail": gpu.stderr_tail,
            }

            # Cancelling a running job stops it.
            sleeper = c.submit("cancel-me", python_spec("import time; time.sleep(300)"))
            _wait_for(lambda: c.get(sleeper.id).state == "running", "the sleeper to start")
            c.cancel(sleeper.id)
            seen["cancelled"] = c.wait(sleeper.id, deadline_s=60, poll_s=0.05).state
    finally:
        ray.shutdown()
        cluster.shutdown()
    return seen


if __name__ == "__main__":
    state = Path(sys.argv[1])
    # Ray's sessions, logs and sockets in a directory of their own, with a short path (unix
    # socket paths are limited to 107 bytes).
    ray_tmp = tempfile.mkdtemp(prefix="gray-")
    os.environ["RAY_TMPDIR"] = ray_tmp
    result: dict[str, Any]
    try:
        result = main(state)
    except Exception as exc:
        result = {"error": f"{exc!r}", "traceback": traceback.format_exc()}
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    (state / "report.json").write_text(json.dumps(result, indent=2, default=str))
    os._exit(0)  # Ray's and the gateway's daemon threads do not hold the exit
