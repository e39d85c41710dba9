"""The soak, short: 300 jobs from 3 client processes sharing one queue, through 2 gateways, one
of them killed with SIGKILL mid-run and restarted (`bench/soak_gateway.py` runs >= 5,000 with
several kills and checks RSS)."""

from __future__ import annotations

from pathlib import Path

from gateway_soak import run_soak


def test_soak_with_a_gateway_killed_mid_run_loses_nothing_and_records_once(
    tmp_path: Path,
) -> None:
    report = run_soak(tmp_path, jobs=300, kills=1, seed=7, early=100, timeout_s=300, progress=print)
    print(f"gateway RSS (kB) after {report.early} jobs and at the end: {report.rss_kb}")
    print(
        f"{report.lost_at_restart} running jobs reported lost, {report.resumed_at_restart} queued"
        " jobs resumed after the kill"
    )
    assert not report.timed_out
    assert report.kills == 1
    assert (report.unfinished, report.recorded_twice, report.done_not_recorded) == (0, 0, 0)
    assert report.wrong_results == 0 and report.dead_without_reason == 0
    assert report.done + report.dead == 300
