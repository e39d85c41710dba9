"""`gantry testgen` with gateways in the user's configuration: its jobs go through the project's
durable queue as the server's do, to a real gateway on 127.0.0.1 when it is up, to the local
sandbox when it is down; a target that needs a GPU runs only on a gateway with one, and
otherwise waits in the queue, visibly, for at most its budget, leaving nothing queued; Ctrl-C
cancels the run's jobs, queued or running."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_harness import TOKEN, free_port, make_config, serve_in_thread

from lsp_server.config import load_settings, queue_path
from remote_exec.gateway.backends.local import LocalBackend
from remote_exec.queue import JobQueue
from remote_exec.sandbox import Sandbox

pytestmark = pytest.mark.skipif(
    Sandbox().check() is not None, reason=f"bubblewrap cannot run here: {Sandbox().check()}"
)

FIXTURE = Path(__file__).parent / "data" / "testgen" / "project"
TOKEN_ENV = "GANTRY_TEST_TESTGEN_GATEWAY_TOKEN"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root)
    return root


@pytest.fixture
def user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's own configuration file, in a home of this test's own (the command, run as a
    process, gets this environment, the gateway's token included)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    path = tmp_path / "config" / "gantry" / "config.toml"
    path.parent.mkdir(parents=True)
    return path


def gateways(config: Path, **urls: str) -> None:
    config.write_text(
        "".join(
            f'[[execution.gateways]]\nname = "{name}"\nurl = "{url}"\ntoken_env = "{TOKEN_ENV}"\n'
            for name, url in urls.items()
        )
    )


@contextlib.contextmanager
def gateway(state: Path, gpus: list[str] | None = None) -> Iterator[str]:
    """A real gateway (local backend, bubblewrap) on a loopback port; ``gpus``: the device
    names it hands out (this machine has none: the jobs do not touch them)."""
    config = make_config(state)
    backend = LocalBackend(Sandbox(), config.work_root, max_concurrency=4, gpus=gpus or [])
    with serve_in_thread(config, backend) as url:
        yield url


def run_testgen(project: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", "testgen", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ,
        check=False,
    )


def journal(state: Path) -> list[tuple[str, str]]:
    """The gateway's own record of the jobs it was sent: (key, state)."""
    with contextlib.closing(sqlite3.connect(state / "jobs.sqlite")) as db:
        return db.execute("SELECT key, state FROM jobs").fetchall()


def queued_jobs(project: Path) -> dict[str, int]:
    """The project's queue: jobs per state."""
    queue = JobQueue(queue_path(project, load_settings(project).settings))
    try:
        return {state: n for state, n in queue.counts().items() if n}
    finally:
        queue.close()


def kept(result: dict) -> int:
    return sum(result["funnel"]["stages"]["kept"].values())


def test_jobs_run_on_the_gateway_when_it_is_up(
    project: Path, user_config: Path, tmp_path: Path
) -> None:
    state = tmp_path / "gateway"
    with gateway(state) as url:
        gateways(user_config, box=url)
        done = run_testgen(project, "textutils.py::clamp", "--budget", "60", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert kept(result) >= 1, result["candidates"]
    ran = result["jobs_ran"]
    assert set(ran) == {"box"} and ran["box"] >= 3, ran  # engines, collect, rerun, coverage
    # The gateway's side: it ran as many of the run's jobs (the queue's keys) as were counted.
    finished = [
        s for key, s in journal(state) if key.startswith("testgen:cli:") and s != "cancelled"
    ]
    assert len(finished) == ran["box"], journal(state)
    counts = queued_jobs(project)
    assert not counts.get("pending") and not counts.get("leased"), counts


def test_a_gateway_that_is_down_leaves_the_jobs_to_the_local_sandbox(
    project: Path, user_config: Path
) -> None:
    gateways(user_config, box=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    done = run_testgen(project, "textutils.py::clamp", "--budget", "60", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert kept(result) >= 1, result["candidates"]
    assert set(result["jobs_ran"]) == {"local"}, result["jobs_ran"]


def mark_gpu(project: Path, path: str) -> None:
    with (project / "pyproject.toml").open("a") as pyproject:
        pyproject.write(f'\n[tool.gantry.testgen]\ngpu_paths = ["{path}"]\n')


def test_a_gpu_target_runs_on_the_gateway_with_a_gpu(
    project: Path, user_config: Path, tmp_path: Path
) -> None:
    mark_gpu(project, "textutils.py")
    with gateway(tmp_path / "cpu") as cpu, gateway(tmp_path / "gpu", gpus=["gpu0"]) as gpu:
        gateways(user_config, cpu=cpu, gpu=gpu)
        done = run_testgen(project, "textutils.py::clamp", "--budget", "60", "--json")
    assert done.returncode == 0, done.stderr
    assert "textutils.py needs a GPU (testgen.gpu_paths marks it)" in done.stderr
    result = json.loads(done.stdout)
    assert kept(result) >= 1, result["candidates"]
    assert set(result["jobs_ran"]) == {"gpu"}, result["jobs_ran"]
    assert journal(tmp_path / "cpu") == []


def test_a_gpu_target_with_only_a_cpu_gateway_runs_nothing_and_says_why(
    project: Path, user_config: Path, tmp_path: Path
) -> None:
    mark_gpu(project, "textutils.py")
    before = sorted(p.name for p in (project / "tests").iterdir())
    with gateway(tmp_path / "cpu") as url:
        gateways(user_config, box=url)
        done = run_testgen(project, "textutils.py::clamp", "--budget", "30", "--write")
    assert done.returncode == 1, done.stderr
    assert (
        "textutils.py needs a GPU (testgen.gpu_paths marks it): its jobs run only on a gateway"
        " with one, and wait in the queue for it" in done.stderr
    )
    # Once the gateway has said it has no GPU, the queue knows it never can run them.
    assert "nothing ran: no gateway can run it: box has 0 GPU(s)" in done.stderr
    assert journal(tmp_path / "cpu") == []  # nothing went to the gateway
    counts = queued_jobs(project)
    assert counts.get("dead", 0) >= 1 and set(counts) <= {"dead", "cancelled"}, counts
    assert sorted(p.name for p in (project / "tests").iterdir()) == before


def test_a_gpu_target_waits_for_a_gpu_gateway_for_its_budget_then_stops(
    project: Path, user_config: Path, tmp_path: Path
) -> None:
    mark_gpu(project, "textutils.py")
    down = f"http://127.0.0.1:{free_port()}"  # the GPU machine, off
    with gateway(tmp_path / "cpu") as cpu:
        gateways(user_config, cpu=cpu, gpu=down)
        done = run_testgen(project, "textutils.py::clamp", "--budget", "20")
    assert done.returncode == 1, done.stderr
    assert "waiting in the queue: GPU jobs wait for a gateway" in done.stderr
    assert "left the queue within the budget (20 s): they wait for a gateway with a GPU" in (
        done.stderr
    )
    assert done.stdout == ""
    assert journal(tmp_path / "cpu") == []
    counts = queued_jobs(project)
    assert set(counts) == {"cancelled"}, counts  # nothing left waiting, nothing ran


@pytest.mark.parametrize(
    ("gpu", "after"),
    [
        (True, "waiting in the queue: GPU jobs wait for a gateway"),  # a queued job
        (False, "generate: coverage-guided search"),  # a job running in the local sandbox
    ],
    ids=["queued", "running"],
)
def test_ctrl_c_cancels_the_runs_jobs(
    project: Path, user_config: Path, gpu: bool, after: str
) -> None:
    if gpu:
        mark_gpu(project, "textutils.py")
    gateways(user_config, box=f"http://127.0.0.1:{free_port()}")  # down
    # `gantry` as `python -m lsp_server.cli` runs it, with Ctrl-C heard even when this runs as
    # a shell's background job (which ignores SIGINT: Python keeps an ignored SIGINT ignored).
    gantry = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from lsp_server.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", gantry, "testgen", "textutils.py::clamp", "--budget", "120"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    seen = []
    try:
        while not any(after in line for line in seen):
            seen.append(lines.get(timeout=90))
        time.sleep(1.0)  # the job is under way (queued, or started in the sandbox)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        proc.kill()
        proc.wait()
    while not lines.empty():
        seen.append(lines.get())
    assert "gantry: interrupted\n" in seen, seen
    counts = queued_jobs(project)
    assert counts.get("cancelled", 0) >= 1 and not counts.get("pending"), counts
    assert not counts.get("leased"), counts


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu-target", "gpu-target"])
def test_a_queue_that_cannot_start_leaves_cpu_jobs_to_the_local_sandbox(
    project: Path, user_config: Path, tmp_path: Path, gpu: bool
) -> None:
    broken = tmp_path / "queue.db"
    broken.write_text("not a queue: text long enough to fill SQLite's header and more\n")
    gateways(user_config, box=f"http://127.0.0.1:{free_port()}")
    with user_config.open("a") as config:
        config.write(f'\n[execution]\nqueue = "{broken}"\n')
    if gpu:
        mark_gpu(project, "textutils.py")
    # A budget too small for the engines: the run is quick, and still a run (exit 0).
    done = run_testgen(project, "textutils.py::clamp", "--budget", "5")
    why = f"the job queue could not start: {broken} is not a Gantry queue (not SQLite)"
    if gpu:
        assert done.returncode == 1, done.stderr
        assert f"nothing ran: {why}" in done.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert f"warning: {why}; it is left untouched; the jobs run in the local sandbox" in (
            done.stderr
        )
        assert "# no test was kept" in done.stdout
    assert broken.read_text().startswith("not a queue")


def test_without_a_gateway_no_queue_is_created(project: Path, user_config: Path) -> None:
    # A budget too small for the engines: the run is quick, and still a run (exit 0).
    done = run_testgen(project, "textutils.py::clamp", "--budget", "5", "--json")
    assert done.returncode == 0, done.stderr
    assert "jobs_ran" not in json.loads(done.stdout)  # they ran here directly
    assert not queue_path(project, load_settings(project).settings).exists()
