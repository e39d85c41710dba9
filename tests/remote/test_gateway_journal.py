"""A gateway that runs for weeks: its journal survives kill -9 (queued jobs wait again, running
ones are reported lost), and finished jobs are forgotten by age and count, in memory and on disk."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import attrs
import httpx2
import pytest
from gateway_harness import (
    TOKEN,
    free_port,
    make_config,
    python_spec,
    serve_in_thread,
    spawn_gateway,
)

from remote_exec.execution import ExecutionClient, JobLost
from remote_exec.gateway.backends.local import LocalBackend
from remote_exec.gateway.config import Retention
from remote_exec.gateway.registry import LOST, LOST_IN_RESTART, Registry
from remote_exec.jobs import ExecResult, ExecSpec
from remote_exec.sandbox import Sandbox

SPEC = ExecSpec(files={}, argv=["true"])


def _journal_ids(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT id FROM jobs")}


def _finish(registry: Registry, key: str, state: str = "succeeded", output: bytes = b"") -> str:
    job, new = registry.create("owner", key, SPEC, max_active=100)
    assert new
    registry.started(job.id)
    if output:
        registry.output(job.id, output)
    registry.finished(job.id, ExecResult(state=state, exit_code=0, stdout_tail=key))
    return job.id


def test_finished_jobs_beyond_the_count_are_forgotten_in_memory_and_journal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.sqlite"
    registry = Registry(path, 1024, Retention(max_finished=3))
    ids = [_finish(registry, f"k{i}") for i in range(5)]
    kept = ids[2:]
    assert [registry.get("owner", i) is not None for i in ids] == [False, False, True, True, True]
    assert _journal_ids(path) == set(kept)
    # Its key is free again: resubmitting a forgotten job runs it anew.
    again, new = registry.create("owner", "k0", SPEC, max_active=100)
    assert new and again.id != ids[0]
    registry.close()

    reopened = Registry(path, 1024, Retention(max_finished=2))  # a lower bound applies at once
    assert _journal_ids(path) == {ids[3], ids[4], again.id}
    assert reopened.get("owner", ids[4]).stdout_tail == "k4"
    assert reopened.queued()[0].id == again.id  # the unfinished one is not the count's to drop
    reopened.close()


def test_finished_jobs_older_than_the_retention_are_forgotten(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    registry = Registry(path, 1024, Retention(keep_finished_s=60))
    old = _finish(registry, "old")
    young_job, _ = registry.create("owner", "young", SPEC, max_active=100)
    finished_at = registry.get("owner", old).finished_at
    assert registry.prune(now=finished_at + 30) == 0
    assert registry.prune(now=finished_at + 61) == 1
    assert registry.get("owner", old) is None
    assert registry.get("owner", young_job.id) is not None  # unfinished: never aged out
    assert _journal_ids(path) == {young_job.id}
    registry.close()


def test_live_output_of_finished_jobs_is_bounded_in_all(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "jobs.sqlite", 1024, Retention(finished_log_bytes=250))
    ids = [_finish(registry, f"k{i}", output=b"x" * 100) for i in range(4)]
    logs = [registry.read_log(registry.get("owner", i), 0) for i in ids]
    assert [len(chunk) for chunk, _, _ in logs] == [0, 0, 100, 100]
    # The dropped output is behind the offset, not rewritten; the result's tails stay.
    assert logs[0][1] == 100 and registry.get("owner", ids[0]).stdout_tail == "k0"
    registry.close()


def test_a_journal_of_the_first_release_opens_and_its_unfinished_jobs_are_lost(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, owner TEXT NOT NULL, key TEXT NOT NULL,"
            " state TEXT NOT NULL, exit_code INTEGER, stdout_tail TEXT NOT NULL DEFAULT '',"
            " stderr_tail TEXT NOT NULL DEFAULT '', artifacts TEXT NOT NULL DEFAULT '{}',"
            " created_at REAL NOT NULL, started_at REAL, finished_at REAL, UNIQUE (owner, key))"
        )
        db.executemany(
            "INSERT INTO jobs (id, owner, key, state, created_at, finished_at) VALUES"
            " (?, 'o', ?, ?, 1e9, ?)",
            [("a", "ka", "running", None), ("b", "kb", "queued", None), ("c", "kc", "failed", 2e9)],
        )
    registry = Registry(path, 1024, Retention(keep_finished_s=1e10))
    states = {i: (registry.get("o", i).state, registry.get("o", i).reason) for i in "abc"}
    assert states == {
        "a": (LOST, LOST_IN_RESTART),
        "b": (LOST, LOST_IN_RESTART),
        "c": ("failed", None),
    }
    assert registry.queued() == []
    registry.close()


def test_kill_9_keeps_queued_jobs_and_reports_running_ones_lost(tmp_path: Path) -> None:
    """Two slots: two sleepers run, a third job waits. After kill -9 and a restart, the waiting
    one runs by itself; the running ones answer 404 with state `lost` and a reason, and
    resubmitting their key runs them once more."""
    port = free_port()
    proc = spawn_gateway(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    sleeper = python_spec("import time; time.sleep(300)", timeout_s=600)
    with ExecutionClient(url, TOKEN, read_timeout_s=5) as client:
        running = [client.submit(f"sleeper-{i}", sleeper) for i in range(2)]
        waiting = client.submit("waiting", python_spec("print('ran after the restart')"))
        while any(client.get(j.id).state != "running" for j in running):
            threading.Event().wait(0.05)
        assert client.get(waiting.id).state == "queued"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

        proc = spawn_gateway(tmp_path, port)
        try:
            done = client.wait(waiting.id, deadline_s=60, poll_s=0.05)
            assert (done.state, done.stdout_tail) == ("succeeded", "ran after the restart\n")
            for job in running:
                with pytest.raises(JobLost):
                    client.get(job.id)
                answer = httpx2.get(
                    f"{url}/v1/jobs/{job.id}", headers={"Authorization": f"Bearer {TOKEN}"}
                )
                assert answer.status_code == 404
                body = answer.json()
                assert (body["state"], body["key"], body["reason"]) == (
                    LOST,
                    job.key,
                    LOST_IN_RESTART,
                )
            rerun = client.submit("sleeper-0", python_spec("print('second life')"))
            assert rerun.id != running[0].id
            rerun = client.wait(rerun.id, deadline_s=60, poll_s=0.05)
            assert (rerun.state, rerun.stdout_tail) == ("succeeded", "second life\n")
            assert client.submit("sleeper-0", python_spec("pass")).id == rerun.id
        finally:
            proc.terminate()
            proc.wait(20)


def test_a_running_gateway_forgets_finished_jobs_by_age_even_while_idle(tmp_path: Path) -> None:
    config = attrs.evolve(
        make_config(tmp_path), retention=Retention(keep_finished_s=0.5), prune_every_s=0.1
    )
    backend = LocalBackend(Sandbox(), config.work_root, max_concurrency=1, gpus=[])
    with serve_in_thread(config, backend) as url, ExecutionClient(url, TOKEN) as client:
        job = client.submit("short-lived", python_spec("pass"))
        assert client.wait(job.id, deadline_s=60, poll_s=0.05).state == "succeeded"
        deadline = time.monotonic() + 30
        with pytest.raises(JobLost):  # nothing else finishes: the periodic pruning forgot it
            while time.monotonic() < deadline:
                client.get(job.id)
                time.sleep(0.05)
    assert _journal_ids(config.journal_path) == set()
