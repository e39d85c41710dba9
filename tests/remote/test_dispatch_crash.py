"""Crash safety of the dispatcher: the process that owns the queue is killed with SIGKILL at
hundreds of seeded-random moments (starting up, in an enqueue burst, while a job runs in the local
sandbox, right after the gateway accepted a job and before the queue recorded it), against a real
gateway (local backend, bubblewrap) on 127.0.0.1. After a last child drains the queue:

* every acknowledged job is in the queue and ends DONE (with its own job's result) or DEAD, and
  DEAD only because kills used up its attempts;
* no job is completed twice (`complete` returned True once per id);
* the gateway accepted and journaled each key at most once, and finished it at most once: a
  resubmission after a kill is answered from its journal, never run again;
* the queue file passes PRAGMA integrity_check.

The harness (`run_crash`) lives in dispatch_child.py, beside the child it drives, and
`bench/remote_crash.py` runs it at 1,000 kill points.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dispatch_child import run_crash

from remote_exec.sandbox import Sandbox

KILL_POINTS = 200
SEED = 20240602

pytestmark = [
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap"),
    pytest.mark.timeout(420),
]


def test_sigkill_dispatcher_at_random_moments(tmp_path: Path) -> None:
    if (problem := Sandbox().check()) is not None:
        pytest.skip(f"bubblewrap cannot run here: {problem}")
    report = run_crash(tmp_path, kill_points=KILL_POINTS, seed=SEED)
    print(report)  # shown with -s, or on failure: the counts behind the verdict

    assert report.kill_points >= 200
    # The spread: each kind of moment was hit, including the window between remote submit and
    # record, and local runs cut short.
    assert set(report.kills_by_mode) == {"start", "enqueue", "local", "remote"}
    assert report.kills_remote_in_flight >= 20, report
    assert report.kills_local_in_flight >= 20, report
    assert report.acked > report.kill_points  # the children did real work between kills
    assert report.remote_accepted > 0 and report.local_runs > 0
    assert report.drain_counts, "the draining child did not finish"

    assert report.violations() == [], report
    # Most jobs finish; a few may die of repeated kills, and each of those was explained above.
    assert report.done >= 0.8 * report.acked, report


def test_long_jobs_do_not_leak_queue_connections(tmp_path: Path) -> None:
    """Leases are renewed by one thread: the queue keeps a connection per calling thread and
    never closes it, so a renewing thread per job leaked a connection (and its descriptors) for
    every job that outlived a third of its lease."""
    from dispatch_child import job_spec

    from remote_exec.dispatcher import Dispatcher
    from remote_exec.jobs import JobKind, JobState
    from remote_exec.settings import DispatcherConfig

    dispatcher = Dispatcher(
        DispatcherConfig(
            queue_path=tmp_path / "q.db", work_root=tmp_path / "work", lease_s=0.3, unsandboxed=True
        ),
        announce=lambda message: None,
    )
    dispatcher.start()
    try:
        jobs = [
            dispatcher.submit(f"k{i}", JobKind.EXEC, job_spec(f"k{i}", 0.25)) for i in range(12)
        ]
        assert all(dispatcher.wait(job.id, 60).state == JobState.DONE for job in jobs)
    finally:
        dispatcher.stop()
    # workers, the health watcher, the renewer and this thread: not one per job
    assert len(dispatcher.queue._all) <= 6
    dispatcher.queue.close()


def test_a_stalled_worker_learns_it_lost_its_job(tmp_path: Path, monkeypatch) -> None:
    """A worker that stalls past its lease (the machine slept, the disk blocked) loses the job
    to a sibling worker of the same dispatcher; the stalled run must learn it and stop rather
    than run on to a second result. Workers had one shared owner name, so the sibling's claim
    looked like the stalled worker's own lease and both runs finished."""
    import time

    from dispatch_child import job_spec

    from remote_exec import routing as routing_module
    from remote_exec.dispatcher import Dispatcher
    from remote_exec.jobs import JobKind, JobState
    from remote_exec.settings import DispatcherConfig

    runs: list[str] = []
    run_spec = routing_module.run_spec

    def counting(spec, *args, **kwargs):
        result = run_spec(spec, *args, **kwargs)
        runs.append(result.state)
        return result

    monkeypatch.setattr(routing_module, "run_spec", counting)
    dispatcher = Dispatcher(
        DispatcherConfig(
            queue_path=tmp_path / "q.db",
            work_root=tmp_path / "work",
            lease_s=1.0,
            probe_interval_s=0.1,
            unsandboxed=True,
        ),
        announce=lambda message: None,
    )
    heartbeat, stalled = dispatcher.queue.heartbeat, []

    def stalling_heartbeat(job_id: int, owner: str, lease_s: float = 30.0) -> bool:
        if not stalled:  # the first renewal comes 1.6 s late: the lease (1 s) has expired
            stalled.append(owner)
            time.sleep(1.6)
        return heartbeat(job_id, owner, lease_s)

    dispatcher.queue.heartbeat = stalling_heartbeat
    dispatcher.start()
    try:
        job = dispatcher.submit("A", JobKind.EXEC, job_spec("A", 2.5))
        assert dispatcher.wait(job.id, 60).state == JobState.DONE
        deadline = time.monotonic() + 30
        while len(runs) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        dispatcher.stop()
        dispatcher.queue.close()
    assert stalled, "the lease was never renewed"
    assert sorted(runs) == ["cancelled", "succeeded"], runs
